import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * Produces the golden-fixture record set (scripts/capture-fixtures) with the
 * Java producer to partition 0 of a topic, compressed with one codec. The
 * same 50 records as tests/python/rdkafka_fixture_producer.py, so the
 * fixtures of both clients hold the same data.
 *
 * <p>Usage: {@code FixtureProducer <bootstrap> <topic> <none|gzip|snappy|lz4|zstd>}
 *
 * <p>Record {@code i} (0-49): timestamp 1700000000000 + 10 i, except record 7
 * at 1699999995000 (before the batch's first record: a negative delta); key
 * null (i = 0), empty (i = 1) or "key-i"; value null (i % 10 = 3), empty
 * (i = 4), 300 binary bytes (i % 7 = 5), a 70 000-byte text (i = 49: more
 * than one lz4 block and xerial snappy chunk) or "value-i"; headers none
 * (i = 6) or h="a", h="b", n="i", then null=null (i % 5 = 2) and
 * bin=00 01 02 ff fe (i % 9 = 4).
 *
 * <p>Prints a first JSON line {@code {"client":"java","version":"4.3.1"}}, then
 * one line per record in order: offset, timestamp, key, value and headers
 * (base64 or null), as JavaConsumer prints them. Exits 1 if a send failed.
 */
public final class FixtureProducer {
    static final int COUNT = 50;

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: FixtureProducer <bootstrap> <topic> <none|gzip|snappy|lz4|zstd>");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skotch-fixture-producer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args[2]);
        // All small records in one batch; the large one gets its own
        // (it exceeds batch.size).
        props.put(ProducerConfig.LINGER_MS_CONFIG, "100");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(COUNT);
        List<Future<RecordMetadata>> sent = new ArrayList<>(COUNT);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < COUNT; i++) {
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(
                        args[1], 0, timestamp(i), key(i), value(i), headers(i));
                records.add(r);
                sent.add(producer.send(r));
            }
            producer.flush();
        }

        StringBuilder out = new StringBuilder();
        out.append("{\"client\":\"java\",\"version\":").append(Json.str(AppInfoParser.getVersion())).append("}\n");
        int failed = 0;
        for (int i = 0; i < COUNT; i++) {
            RecordMetadata md;
            try {
                md = sent.get(i).get();
            } catch (Exception e) {
                failed++;
                System.err.println("record " + i + " failed: " + e.getCause());
                continue;
            }
            ProducerRecord<byte[], byte[]> r = records.get(i);
            out.append("{\"offset\":").append(md.offset())
                    .append(",\"timestamp\":").append(md.timestamp())
                    .append(",\"key\":").append(Json.b64(r.key()))
                    .append(",\"value\":").append(Json.b64(r.value()))
                    .append(",\"headers\":[");
            boolean first = true;
            for (Header h : r.headers()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append('[').append(Json.str(h.key())).append(',').append(Json.b64(h.value())).append(']');
            }
            out.append("]}\n");
        }
        System.out.print(out);
        System.out.flush();
        if (failed > 0) {
            System.exit(1);
        }
    }

    static long timestamp(int i) {
        return i == 7 ? 1_699_999_995_000L : 1_700_000_000_000L + 10L * i;
    }

    static byte[] key(int i) {
        if (i == 0) {
            return null;
        }
        return i == 1 ? new byte[0] : Json.utf8("key-" + i);
    }

    static byte[] value(int i) {
        if (i % 10 == 3) {
            return null;
        }
        if (i == 4) {
            return new byte[0];
        }
        if (i % 7 == 5) {
            byte[] b = new byte[300];
            for (int j = 0; j < b.length; j++) {
                b[j] = (byte) (i * 31 + j * 7);
            }
            return b;
        }
        if (i == 49) {
            StringBuilder s = new StringBuilder(70_100);
            for (int k = 0; s.length() < 70_000; k++) {
                s.append("line ").append(k).append(" of the large fixture value\n");
            }
            s.setLength(70_000);
            return s.toString().getBytes(StandardCharsets.UTF_8);
        }
        return Json.utf8("value-" + i);
    }

    static List<Header> headers(int i) {
        List<Header> h = new ArrayList<>();
        if (i == 6) {
            return h;
        }
        h.add(new RecordHeader("h", Json.utf8("a")));
        h.add(new RecordHeader("h", Json.utf8("b")));
        h.add(new RecordHeader("n", Json.utf8(Integer.toString(i))));
        if (i % 5 == 2) {
            h.add(new RecordHeader("null", null));
        }
        if (i % 9 == 4) {
            h.add(new RecordHeader("bin", new byte[] {0, 1, 2, (byte) 0xff, (byte) 0xfe}));
        }
        return h;
    }
}
