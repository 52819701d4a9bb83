import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces deterministic records with the Java producer (acks=all,
 * idempotence on, the default partitioner).
 *
 * <p>Usage: {@code JavaProducer <bootstrap> <topic> <count> [--key-prefix K]
 * [--null-every N] [--headers] [--compression none|gzip|snappy|lz4|zstd]}
 *
 * <p>Record {@code i} (0-based) has key {@code K + (i % 1000)} (K defaults to
 * "key-") and value {@code "value-" + i}, both UTF-8; with
 * {@code --null-every N} the value is null when {@code i % N == 0}. With
 * {@code --headers} it carries the headers, in this order,
 * {@code h="a"}, {@code h="b"} (a duplicate key) and {@code n=<i as decimal>}.
 *
 * <p>After flushing, prints one JSON line per record, in order of {@code i}:
 * {@code {"i":0,"partition":3,"offset":0,"timestamp":1700000000000,"key":"key-0","value":"value-0"}}
 * ({@code "value":null} for null values). Exits 1 if any send failed.
 */
public final class JavaProducer {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            usage();
        }
        String bootstrap = args[0];
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        String keyPrefix = "key-";
        int nullEvery = 0;
        boolean headers = false;
        String compression = "none";
        for (int i = 3; i < args.length; i++) {
            switch (args[i]) {
                case "--key-prefix": keyPrefix = next(args, ++i); break;
                case "--null-every": nullEvery = Integer.parseInt(next(args, ++i)); break;
                case "--headers": headers = true; break;
                case "--compression": compression = next(args, ++i); break;
                default: usage();
            }
        }

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skotch-java-producer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        ClientProps.addFromEnv(props);

        List<String> keys = new ArrayList<>(count);
        List<String> values = new ArrayList<>(count);
        List<Future<RecordMetadata>> sent = new ArrayList<>(count);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                String key = keyPrefix + (i % 1000);
                String value = (nullEvery > 0 && i % nullEvery == 0) ? null : "value-" + i;
                ProducerRecord<byte[], byte[]> record =
                        new ProducerRecord<>(topic, Json.utf8(key), Json.utf8(value));
                if (headers) {
                    record.headers().add("h", Json.utf8("a"));
                    record.headers().add("h", Json.utf8("b"));
                    record.headers().add("n", Json.utf8(Integer.toString(i)));
                }
                keys.add(key);
                values.add(value);
                sent.add(producer.send(record));
            }
            producer.flush();
        }

        int failed = 0;
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < count; i++) {
            RecordMetadata md;
            try {
                md = sent.get(i).get();
            } catch (Exception e) {
                failed++;
                System.err.println("record " + i + " failed: " + e.getCause());
                continue;
            }
            out.append("{\"i\":").append(i)
                    .append(",\"partition\":").append(md.partition())
                    .append(",\"offset\":").append(md.offset())
                    .append(",\"timestamp\":").append(md.timestamp())
                    .append(",\"key\":").append(Json.str(keys.get(i)))
                    .append(",\"value\":").append(Json.str(values.get(i)))
                    .append("}\n");
        }
        System.out.print(out);
        System.out.flush();
        if (failed > 0) {
            System.err.println(failed + " of " + count + " records failed");
            System.exit(1);
        }
    }

    private static String next(String[] args, int i) {
        if (i >= args.length) {
            usage();
        }
        return args[i];
    }

    private static void usage() {
        System.err.println("usage: JavaProducer <bootstrap> <topic> <count> [--key-prefix K] [--null-every N]"
                + " [--headers] [--compression none|gzip|snappy|lz4|zstd]");
        System.exit(2);
    }
}
