import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces keyed records at a steady rate with the Java producer (acks=all,
 * idempotence on, the default partitioner) and reports when each
 * partition's records were acknowledged: the Java side of
 * {@code frozen_leader_java_for_comparison} in tests/failover_produce.rs.
 *
 * <p>Usage: {@code PacedProducer <bootstrap> <topic> <count> <rate>}
 *
 * <p>Record {@code i} (0-based) has key {@code "k" + (i % 64)} and value
 * {@code key + ":" + (i / 64) + ":" + i} (the key's number, its own sequence
 * number, {@code i}), both UTF-8, like {@code key_value} of the Rust test.
 * Records are sent {@code rate} per second (paced every 500 records), never
 * waiting for an answer.
 *
 * <p>Output on stdout, one JSON object per line:
 * <ul>
 *   <li>{@code {"started":true}} once the producer has the topic's metadata,
 *       just before the first send: the time origin of every figure below
 *       (a reader may align its own clock on when it sees this line);
 *   <li>after flushing, per partition,
 *       {@code {"partition":0,"acked":50000,"ack_ms":[12,25,...]}}: records
 *       acknowledged and when (ms since the origin), thinned so that two
 *       kept times are at least 10 ms apart, except that around every
 *       silence of 10 ms or more both the acknowledgement before it and the
 *       one after it are kept, so every such gap is exact to the ms;
 *   <li>last, {@code {"done":true,"acked":N,"failed":M,"elapsed_ms":T,
 *       "errors":{"<exception>":count,...}}}.
 * </ul>
 * Failed records are counted, not fatal: the exit status is 0 whenever the
 * run completed.
 */
public final class PacedProducer {
    private static final int KEYS = 64;
    /** Acknowledgement times closer than this to the last one kept are thinned out. */
    private static final long THIN_NANOS = 10_000_000L;

    /** One partition's acknowledgements. */
    private static final class Acks {
        long count;
        /** Last acknowledgement seen and last one kept (ns since the origin; -1: none). */
        long lastSeen = -1;
        long lastKept = -1;
        final List<Long> kept = new ArrayList<>();

        void add(long t) {
            count++;
            if (lastSeen >= 0 && t - lastSeen >= THIN_NANOS && lastSeen != lastKept) {
                // A silence ends: keep the acknowledgement that began it.
                keep(lastSeen);
            }
            if (lastKept < 0 || t - lastKept >= THIN_NANOS) {
                keep(t);
            }
            lastSeen = t;
        }

        private void keep(long t) {
            kept.add(t);
            lastKept = t;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: PacedProducer <bootstrap> <topic> <count> <rate>");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long count = Long.parseLong(args[2]);
        long rate = Long.parseLong(args[3]);
        if (count < 0 || rate <= 0) {
            System.err.println("PacedProducer: count must be >= 0 and rate > 0");
            System.exit(2);
        }

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skotch-java-paced-producer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        ClientProps.addFromEnv(props);

        Map<Integer, Acks> acks = new TreeMap<>();
        Map<String, Long> errors = new TreeMap<>();
        long[] failed = {0};
        long start;
        long elapsed;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            // Metadata first, so that the origin is not skewed by it.
            producer.partitionsFor(topic);
            start = System.nanoTime();
            System.out.println("{\"started\":true}");
            System.out.flush();
            final long origin = start;
            for (long i = 0; i < count; i++) {
                if (i % 500 == 0) {
                    long due = origin + i * 1_000_000_000L / rate;
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                    }
                }
                long key = i % KEYS;
                String k = "k" + key;
                String v = key + ":" + (i / KEYS) + ":" + i;
                producer.send(new ProducerRecord<>(topic, Json.utf8(k), Json.utf8(v)), (md, e) -> {
                    long now = System.nanoTime();
                    // Callbacks run on the sender thread, or on the caller's
                    // when send itself fails.
                    synchronized (acks) {
                        if (e != null) {
                            failed[0]++;
                            errors.merge(e.getClass().getSimpleName() + ": " + e.getMessage(), 1L, Long::sum);
                        } else {
                            acks.computeIfAbsent(md.partition(), p -> new Acks()).add(now - origin);
                        }
                    }
                });
            }
            producer.flush();
            elapsed = System.nanoTime() - start;
        }

        StringBuilder out = new StringBuilder();
        long acked = 0;
        synchronized (acks) {
            for (Map.Entry<Integer, Acks> e : acks.entrySet()) {
                Acks a = e.getValue();
                acked += a.count;
                out.append("{\"partition\":").append(e.getKey())
                        .append(",\"acked\":").append(a.count)
                        .append(",\"ack_ms\":[");
                for (int j = 0; j < a.kept.size(); j++) {
                    if (j > 0) {
                        out.append(',');
                    }
                    out.append(a.kept.get(j) / 1_000_000L);
                }
                out.append("]}\n");
            }
            out.append("{\"done\":true,\"acked\":").append(acked)
                    .append(",\"failed\":").append(failed[0])
                    .append(",\"elapsed_ms\":").append(elapsed / 1_000_000L)
                    .append(",\"errors\":{");
            boolean first = true;
            for (Map.Entry<String, Long> e : errors.entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append(Json.str(e.getKey())).append(':').append(e.getValue());
            }
            out.append("}}\n");
        }
        System.out.print(out);
        System.out.flush();
    }
}
