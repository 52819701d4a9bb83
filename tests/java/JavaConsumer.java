import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a topic with the Java consumer: all partitions assigned (no group,
 * no commits), from the earliest offset.
 *
 * <p>Usage: {@code JavaConsumer <bootstrap> <topic> <expectedCount>
 * [--timeout-ms T] [--read-committed]}
 *
 * <p>Polls until at least {@code expectedCount} records arrived (all records
 * of the last poll are printed, so a fuller topic may print more) or
 * {@code T} ms (default 30000) passed. Prints one JSON line per record, in
 * the order received (offset order within a partition):
 * <pre>
 * {"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"timestampType":"CreateTime",
 *  "key":"a2V5LTU=","value":null,"headers":[["h","YQ=="],["h","Yg=="]]}
 * </pre>
 * key, value and header values are base64 (standard alphabet, padded) or
 * null; headers keep their order and duplicates. Exits 1 on timeout (after
 * printing what it got), 2 on bad usage.
 */
public final class JavaConsumer {
    public static void main(String[] args) {
        if (args.length < 3) {
            usage();
        }
        String bootstrap = args[0];
        String topic = args[1];
        long expected = Long.parseLong(args[2]);
        long timeoutMs = 30_000;
        String isolation = "read_uncommitted";
        for (int i = 3; i < args.length; i++) {
            switch (args[i]) {
                case "--timeout-ms":
                    if (++i >= args.length) {
                        usage();
                    }
                    timeoutMs = Long.parseLong(args[i]);
                    break;
                case "--read-committed": isolation = "read_committed"; break;
                default: usage();
            }
        }

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "skotch-java-consumer");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        // Reading must never create the topic as a side effect.
        props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        ClientProps.addFromEnv(props);

        long deadline = System.currentTimeMillis() + timeoutMs;
        long received = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
            if (infos == null || infos.isEmpty()) {
                System.err.println("topic " + topic + " has no partitions (does it exist?)");
                System.exit(1);
            }
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo info : infos) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            while (received < expected) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                StringBuilder out = new StringBuilder();
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
                    out.append(line(r)).append('\n');
                    received++;
                }
                System.out.print(out);
            }
        }
        System.out.flush();
        if (received < expected) {
            System.err.println("timed out after " + timeoutMs + " ms with " + received + " of " + expected + " records");
            System.exit(1);
        }
    }

    private static String line(ConsumerRecord<byte[], byte[]> r) {
        StringBuilder b = new StringBuilder(128);
        b.append("{\"topic\":").append(Json.str(r.topic()))
                .append(",\"partition\":").append(r.partition())
                .append(",\"offset\":").append(r.offset())
                .append(",\"timestamp\":").append(r.timestamp())
                .append(",\"timestampType\":").append(Json.str(r.timestampType().name))
                .append(",\"key\":").append(Json.b64(r.key()))
                .append(",\"value\":").append(Json.b64(r.value()))
                .append(",\"headers\":[");
        boolean first = true;
        for (Header h : r.headers()) {
            if (!first) {
                b.append(',');
            }
            first = false;
            b.append('[').append(Json.str(h.key())).append(',').append(Json.b64(h.value())).append(']');
        }
        return b.append("]}").toString();
    }

    private static void usage() {
        System.err.println("usage: JavaConsumer <bootstrap> <topic> <expectedCount> [--timeout-ms T] [--read-committed]");
        System.exit(2);
    }
}
