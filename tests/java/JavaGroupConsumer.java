import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A Java consumer in a consumer group, used to give the group tooling tests a
 * real group with members, an assignment and committed offsets.
 *
 * <p>Usage: {@code JavaGroupConsumer <bootstrap> <topic> <groupId> <count>
 * [--protocol classic|consumer] [--assignor NAME] [--client-id ID]
 * [--instance-id ID] [--stay-ms T] [--until-eof] [--timeout-ms T]}
 *
 * <p>Subscribes to {@code topic} (auto commit off, earliest reset), polls
 * until {@code count} records arrived (or {@code --timeout-ms}, default
 * 60000, passed: exit 1), commits the positions with commitSync, and prints
 * one JSON line:
 * <pre>
 * {"committed":{"t-0":12,"t-1":9},"assignment":["t-0","t-1"]}
 * </pre>
 * Then it stays in the group, polling (records are read but not committed),
 * for {@code --stay-ms} (default 0; 600000 with {@code --until-eof}), or
 * with {@code --until-eof} until its standard input is closed, and leaves
 * the group on close. {@code --protocol} is
 * {@code group.protocol} (default classic); {@code --assignor} is
 * {@code partition.assignment.strategy} (a class name, classic) or
 * {@code group.remote.assignor} (uniform or range, consumer).
 */
public final class JavaGroupConsumer {
    public static void main(String[] args) {
        if (args.length < 4) {
            usage();
        }
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        long count = Long.parseLong(args[3]);
        String protocol = "classic";
        String assignor = null;
        String clientId = "skotch-java-group-consumer";
        String instanceId = null;
        long stayMs = 0;
        long timeoutMs = 60_000;
        boolean untilEof = false;
        for (int i = 4; i < args.length; i++) {
            if (args[i].equals("--until-eof")) {
                untilEof = true;
                if (stayMs == 0) {
                    stayMs = 600_000;
                }
                continue;
            }
            if (i + 1 >= args.length) {
                usage();
            }
            switch (args[i]) {
                case "--protocol": protocol = args[++i]; break;
                case "--assignor": assignor = args[++i]; break;
                case "--client-id": clientId = args[++i]; break;
                case "--instance-id": instanceId = args[++i]; break;
                case "--stay-ms": stayMs = Long.parseLong(args[++i]); break;
                case "--timeout-ms": timeoutMs = Long.parseLong(args[++i]); break;
                default: usage();
            }
        }

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        if (instanceId != null) {
            props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
        }
        if (assignor != null) {
            if (protocol.equals("consumer")) {
                props.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
            } else {
                props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
            }
        }

        AtomicBoolean stdinClosed = new AtomicBoolean(false);
        Thread watcher = new Thread(() -> {
            try {
                InputStream in = System.in;
                while (in.read() >= 0) {
                    // Anything written is ignored; only EOF matters.
                }
            } catch (IOException e) {
                // Treat a broken stdin like a closed one.
            }
            stdinClosed.set(true);
        });
        watcher.setDaemon(true);
        watcher.start();

        long deadline = System.currentTimeMillis() + timeoutMs;
        long received = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            while (received < count) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    System.err.println("timed out after " + timeoutMs + " ms with " + received + " of " + count + " records");
                    System.exit(1);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 200)))) {
                    received++;
                }
            }
            Set<TopicPartition> assigned = consumer.assignment();
            Map<TopicPartition, OffsetAndMetadata> offsets = new TreeMap<>(
                    (a, b) -> a.topic().equals(b.topic()) ? Integer.compare(a.partition(), b.partition()) : a.topic().compareTo(b.topic()));
            for (TopicPartition tp : assigned) {
                offsets.put(tp, new OffsetAndMetadata(consumer.position(tp)));
            }
            consumer.commitSync(offsets);

            StringBuilder out = new StringBuilder("{\"committed\":{");
            boolean first = true;
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append(Json.str(e.getKey().toString())).append(':').append(e.getValue().offset());
            }
            out.append("},\"assignment\":[");
            first = true;
            for (TopicPartition tp : offsets.keySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append(Json.str(tp.toString()));
            }
            System.out.println(out.append("]}"));
            System.out.flush();

            long stayUntil = System.currentTimeMillis() + stayMs;
            while (!(untilEof && stdinClosed.get()) && System.currentTimeMillis() < stayUntil) {
                consumer.poll(Duration.ofMillis(100));
            }
        }
    }

    private static void usage() {
        System.err.println("usage: JavaGroupConsumer <bootstrap> <topic> <groupId> <count> [--protocol classic|consumer]"
                + " [--assignor NAME] [--client-id ID] [--instance-id ID] [--stay-ms T] [--until-eof] [--timeout-ms T]");
        System.exit(2);
    }
}
