import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * The Java client's side of the mock cluster's conformance run
 * (tests/mock_conformance.rs): what an application does with Kafka, against
 * {@code skotch mock-cluster} / {@code skotch_mock::MockCluster}.
 *
 * <p>Usage:
 * <ul>
 *   <li>{@code MockConformance produce <bootstrap> <topic> <partitions> <count>}:
 *       an idempotent producer (enable.idempotence=true, acks=all) sends
 *       record i (key {@code k-i}, value {@code v-i}) to partition
 *       {@code i % partitions}; every send is awaited. Prints
 *       {@code sent <partition> <offset> <value>} per record.
 *   <li>{@code MockConformance consume <bootstrap> <topic> <count> <timeoutMs>}:
 *       a consumer without a group assigns every partition, seeks to the
 *       beginning and reads until {@code count} records came. Prints
 *       {@code rec <partition> <offset> <value>} per record.
 *   <li>{@code MockConformance group <bootstrap> <topic> <partitions> <groupId>
 *       <classic|consumer> <count> <timeoutMs>}: two group members (threads)
 *       subscribe to the (empty) topic; once both own partitions and together
 *       all of them, an idempotent producer sends {@code count} records
 *       ({@code g-i} to partition {@code i % partitions}); the members read
 *       until all came, commit synchronously and close; then a fresh consumer
 *       of the group fetches the committed offsets. Prints
 *       {@code assigned <member> <p,...>} on each assignment,
 *       {@code rec <member> <partition> <offset> <value>} per record,
 *       {@code committed <partition> <offset>} per partition at the end.
 * </ul>
 * Any failure (a send not acknowledged, a timeout, an exception from the
 * client) is one line on stderr and exit status 1; bad usage exits 2.
 */
public final class MockConformance {
    private static final PrintStream OUT =
            new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        System.err.println("MockConformance: kafka-clients " + AppInfoParser.getVersion());
        try {
            if (args.length == 5 && args[0].equals("produce")) {
                produce(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]), "v-");
            } else if (args.length == 5 && args[0].equals("consume")) {
                consume(args[1], args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]));
            } else if (args.length == 8 && args[0].equals("group")) {
                group(args[1], args[2], Integer.parseInt(args[3]), args[4], args[5],
                        Integer.parseInt(args[6]), Long.parseLong(args[7]));
            } else {
                usage();
            }
        } catch (NumberFormatException e) {
            usage();
        } catch (Failure e) {
            OUT.flush();
            System.err.println("MockConformance: " + e.getMessage());
            System.exit(1);
        }
        OUT.flush();
    }

    private static void usage() {
        System.err.println("usage: MockConformance produce <bootstrap> <topic> <partitions> <count>\n"
                + "       MockConformance consume <bootstrap> <topic> <count> <timeoutMs>\n"
                + "       MockConformance group <bootstrap> <topic> <partitions> <groupId> <classic|consumer> <count> <timeoutMs>");
        System.exit(2);
    }

    /** A failed check: the message goes to stderr, the exit status is 1. */
    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    private static synchronized void out(String line) {
        OUT.println(line);
        OUT.flush();
    }

    private static String oneLine(Throwable e) {
        return (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
    }

    /** Sends {@code count} records idempotently with acks=all; every send must succeed. */
    private static void produce(String bootstrap, String topic, int partitions, int count, String prefix)
            throws Failure {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skotch-mock-conformance-producer");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            List<Future<RecordMetadata>> sends = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                sends.add(producer.send(new ProducerRecord<>(topic, i % partitions, "k-" + i, prefix + i)));
            }
            producer.flush();
            for (int i = 0; i < count; i++) {
                RecordMetadata md;
                try {
                    md = sends.get(i).get();
                } catch (Exception e) {
                    Throwable cause = e.getCause() == null ? e : e.getCause();
                    throw new Failure("send of record " + i + " failed: " + oneLine(cause));
                }
                out("sent " + md.partition() + " " + md.offset() + " " + prefix + i);
            }
        } catch (RuntimeException e) {
            throw new Failure("producer: " + oneLine(e));
        }
    }

    private static Properties consumerProps(String bootstrap, String clientId) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return props;
    }

    /** Reads every partition from the beginning, without a group, until {@code count} records came. */
    private static void consume(String bootstrap, String topic, int count, long timeoutMs) throws Failure {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(consumerProps(bootstrap, "skotch-mock-conformance-consumer"))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs))) {
                tps.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            int got = 0;
            while (got < count) {
                if (System.nanoTime() > deadline) {
                    throw new Failure("consume: " + got + " of " + count + " records after " + timeoutMs + " ms");
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    out("rec " + r.partition() + " " + r.offset() + " " + r.value());
                    got++;
                }
            }
        } catch (RuntimeException e) {
            throw new Failure("consumer: " + oneLine(e));
        }
    }

    /** Partition numbers, sorted, comma-separated. */
    private static String numbers(Collection<TopicPartition> tps) {
        TreeSet<Integer> n = new TreeSet<>();
        for (TopicPartition tp : tps) {
            n.add(tp.partition());
        }
        List<String> s = new ArrayList<>();
        for (Integer i : n) {
            s.add(i.toString());
        }
        return String.join(",", s);
    }

    /** One group member: polls until every record was read (by either member), then commits and closes. */
    private static final class Member implements Runnable {
        final String name;
        final Properties props;
        final String topic;
        final Map<String, Set<TopicPartition>> owned;
        final AtomicInteger total;
        final int count;
        final AtomicBoolean stop;
        volatile String error;

        Member(String name, Properties props, String topic, Map<String, Set<TopicPartition>> owned,
                AtomicInteger total, int count, AtomicBoolean stop) {
            this.name = name;
            this.props = props;
            this.topic = topic;
            this.owned = owned;
            this.total = total;
            this.count = count;
            this.stop = stop;
        }

        @Override
        public void run() {
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
                consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                        owned.get(name).addAll(partitions);
                        out("assigned " + name + " " + numbers(consumer.assignment()));
                    }

                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                        // Commit what was read before another member takes
                        // the partitions over: no record read twice.
                        if (!partitions.isEmpty()) {
                            consumer.commitSync();
                        }
                        owned.get(name).removeAll(partitions);
                    }

                    @Override
                    public void onPartitionsLost(Collection<TopicPartition> partitions) {
                        owned.get(name).removeAll(partitions);
                        out("lost " + name + " " + numbers(partitions));
                    }
                });
                while (total.get() < count && !stop.get()) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                        out("rec " + name + " " + r.partition() + " " + r.offset() + " " + r.value());
                        total.incrementAndGet();
                    }
                }
                consumer.commitSync(Duration.ofSeconds(10));
            } catch (RuntimeException e) {
                error = oneLine(e);
                stop.set(true);
            }
        }
    }

    private static void group(String bootstrap, String topic, int partitions, String groupId, String protocol,
            int count, long timeoutMs) throws Failure {
        if (!protocol.equals("classic") && !protocol.equals("consumer")) {
            usage();
        }
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        Map<String, Set<TopicPartition>> owned = new ConcurrentHashMap<>();
        AtomicInteger total = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean(false);
        List<Member> members = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (String name : List.of("m1", "m2")) {
            Properties props = consumerProps(bootstrap, "skotch-mock-conformance-" + name);
            props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
            if (protocol.equals("classic")) {
                // Short, so a member that goes wrong is noticed within the
                // test's time (the consumer protocol's are the broker's).
                props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
                props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
            }
            owned.put(name, ConcurrentHashMap.newKeySet());
            Member m = new Member(name, props, topic, owned, total, count, stop);
            members.add(m);
            Thread t = new Thread(m, "member-" + name);
            threads.add(t);
            t.start();
        }
        try {
            // Produce only once both members own partitions and together all
            // of them, so that both read some and no rebalance moves records
            // between them while they read.
            while (true) {
                Set<TopicPartition> a = owned.get("m1");
                Set<TopicPartition> b = owned.get("m2");
                Set<TopicPartition> union = new HashSet<>(a);
                union.addAll(b);
                if (!a.isEmpty() && !b.isEmpty() && union.size() == partitions && a.size() + b.size() == partitions) {
                    break;
                }
                if (stop.get()) {
                    throw new Failure(memberErrors(members, "a member failed before the group was stable"));
                }
                if (System.nanoTime() > deadline) {
                    throw new Failure("no stable group of two members after " + timeoutMs + " ms (m1 owns "
                            + numbers(a) + ", m2 owns " + numbers(b) + ")" + memberErrors(members, ""));
                }
                Thread.sleep(50);
            }
            out("stable m1=" + numbers(owned.get("m1")) + " m2=" + numbers(owned.get("m2")));
            produce(bootstrap, topic, partitions, count, "g-");
            for (Thread t : threads) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                t.join(Math.max(1, left));
            }
            if (threads.stream().anyMatch(Thread::isAlive)) {
                stop.set(true);
                throw new Failure("the members read " + total.get() + " of " + count + " records after "
                        + timeoutMs + " ms");
            }
            String errors = memberErrors(members, "");
            if (!errors.isEmpty()) {
                throw new Failure(errors);
            }
        } catch (InterruptedException e) {
            throw new Failure("interrupted");
        } finally {
            stop.set(true);
        }
        // What the group committed, as a new member would start from it.
        Properties props = consumerProps(bootstrap, "skotch-mock-conformance-checker");
        props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        try (KafkaConsumer<String, String> checker = new KafkaConsumer<>(props)) {
            Set<TopicPartition> tps = new HashSet<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            Map<TopicPartition, OffsetAndMetadata> committed = checker.committed(tps, Duration.ofSeconds(10));
            for (int p = 0; p < partitions; p++) {
                OffsetAndMetadata o = committed.get(new TopicPartition(topic, p));
                out("committed " + p + " " + (o == null ? -1 : o.offset()));
            }
        } catch (RuntimeException e) {
            throw new Failure("fetching the committed offsets: " + oneLine(e));
        }
    }

    private static String memberErrors(List<Member> members, String prefix) {
        StringBuilder s = new StringBuilder();
        for (Member m : members) {
            if (m.error != null) {
                s.append(s.length() == 0 ? prefix : "").append("; ").append(m.name).append(": ").append(m.error);
            }
        }
        return s.toString();
    }
}
