import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A Java consumer group member that processes records the way the skotch
 * members of tests/failover_consume.rs do, so it can share a group with them:
 * manual commits, each record reported as processed before any commit covers
 * it, an asynchronous commit every second and a synchronous one on
 * revocation.
 *
 * <p>Usage: {@code JavaGroupWorker <bootstrap> <topic> <groupId> <classic|consumer>}
 *
 * <p>Prints, one line each, flushed before every commit (so a line is out
 * before the commit that covers its record):
 * <ul>
 *   <li>{@code rec <partition> <offset> <value>}: a record processed;
 *   <li>{@code assigned|revoked|lost <epochMillis> <p,p,...>}: rebalance
 *       callbacks (partition numbers of the topic);
 *   <li>{@code state <p,p,...>}: the current assignment, every 500 ms;
 *   <li>{@code commit-ok} or {@code commit-error <message>}: each commit;
 *   <li>{@code poll-error <message>}: an exception from poll (polling goes on);
 *   <li>{@code closed}: after close, once standard input was closed.
 * </ul>
 * Classic members use a 10 s session and 1 s heartbeats (the skotch members'
 * settings); both protocols a 60 s max.poll.interval.ms.
 */
public final class JavaGroupWorker {
    private static final PrintStream OUT =
            new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: JavaGroupWorker <bootstrap> <topic> <groupId> <classic|consumer>");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args[2]);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "skotch-java-group-worker");
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, args[3]);
        if (args[3].equals("classic")) {
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        }
        props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "60000");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
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

        String topic = args[1];
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    report("assigned", partitions);
                }

                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    if (!partitions.isEmpty()) {
                        commit(consumer);
                    }
                    report("revoked", partitions);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    report("lost", partitions);
                }
            });
            long lastCommit = System.nanoTime();
            long lastState = 0;
            while (!stdinClosed.get()) {
                try {
                    ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<byte[], byte[]> r : records) {
                        String value = r.value() == null ? "null" : new String(r.value(), StandardCharsets.UTF_8);
                        OUT.println("rec " + r.partition() + " " + r.offset() + " " + value);
                    }
                    OUT.flush();
                } catch (RuntimeException e) {
                    OUT.println("poll-error " + oneLine(e));
                    OUT.flush();
                    continue;
                }
                long now = System.nanoTime();
                if (now - lastState >= 500_000_000L) {
                    lastState = now;
                    TreeSet<Integer> numbers = new TreeSet<>();
                    for (TopicPartition tp : consumer.assignment()) {
                        numbers.add(tp.partition());
                    }
                    List<String> owned = new ArrayList<>();
                    for (Integer n : numbers) {
                        owned.add(n.toString());
                    }
                    OUT.println("state " + String.join(",", owned));
                    OUT.flush();
                }
                if (now - lastCommit >= 1_000_000_000L) {
                    lastCommit = now;
                    // Asynchronous, like the skotch members' commits from
                    // another task: polling goes on while it is in flight.
                    OUT.flush();
                    consumer.commitAsync((offsets, e) -> {
                        OUT.println(e == null ? "commit-ok" : "commit-error " + oneLine(e));
                        OUT.flush();
                    });
                }
            }
        }
        OUT.println("closed");
        OUT.flush();
    }

    /** A synchronous commit of the positions (on revocation). */
    private static void commit(KafkaConsumer<byte[], byte[]> consumer) {
        OUT.flush();
        try {
            consumer.commitSync();
            OUT.println("commit-ok");
        } catch (RuntimeException e) {
            OUT.println("commit-error " + oneLine(e));
        }
        OUT.flush();
    }

    private static String oneLine(Throwable e) {
        return (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
    }

    private static void report(String what, Collection<TopicPartition> partitions) {
        TreeSet<Integer> numbers = new TreeSet<>();
        for (TopicPartition tp : partitions) {
            numbers.add(tp.partition());
        }
        List<String> names = new ArrayList<>();
        for (Integer n : numbers) {
            names.add(n.toString());
        }
        OUT.println(what + " " + System.currentTimeMillis() + " " + String.join(",", names));
        OUT.flush();
    }
}
