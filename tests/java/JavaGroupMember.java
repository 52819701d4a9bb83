import java.io.IOException;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A Java consumer group member that reports its assignment as it changes,
 * so a test can check that it and skotch members split a topic's partitions
 * with no overlap and no gap.
 *
 * <p>Usage: {@code JavaGroupMember <bootstrap> <topic> <groupId> <assignorClass>}
 *
 * <p>Prints one line per rebalance callback, flushed at once:
 * {@code assigned t-0,t-1}, {@code revoked t-1}, {@code lost t-0} (an empty
 * list prints nothing after the word). Polls until its standard input is
 * closed, then closes (leaving the group) and prints {@code closed}.
 */
public final class JavaGroupMember {
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: JavaGroupMember <bootstrap> <topic> <groupId> <assignorClass>");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args[2]);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "skotch-java-group-member");
        props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, args[3]);
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        AtomicBoolean stdinClosed = new AtomicBoolean(false);
        Thread watcher = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // Only EOF matters.
                }
            } catch (IOException e) {
                // A broken stdin counts as closed.
            }
            stdinClosed.set(true);
        });
        watcher.setDaemon(true);
        watcher.start();

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(args[1]), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    report("assigned", partitions);
                }

                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    report("revoked", partitions);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    report("lost", partitions);
                }
            });
            while (!stdinClosed.get()) {
                consumer.poll(Duration.ofMillis(100));
            }
        }
        System.out.println("closed");
        System.out.flush();
    }

    private static void report(String what, Collection<TopicPartition> partitions) {
        TreeSet<String> names = new TreeSet<>();
        for (TopicPartition tp : partitions) {
            names.add(tp.topic() + "-" + tp.partition());
        }
        System.out.println(what + " " + String.join(",", names));
        System.out.flush();
    }
}
