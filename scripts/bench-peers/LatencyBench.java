/*
 * The Java peer of scripts/bench's latency scenario (the Java client's
 * throughput figures come from kafka-tools' ProducerPerformance and
 * ConsumerPerformance; kafka-tools has nothing for paced end-to-end
 * latency: its EndToEndLatency sends one record at a time and waits for
 * it). Compiled by scripts/bench with javac against the kafka-clients jar
 * it fetched into .kafka/bench/java-lib.
 *
 *   java -cp '.kafka/bench/java-lib/*:.kafka/bench/java-classes' LatencyBench \
 *       --bootstrap B --topic T [--rate 10000] [--seconds 20]
 *       [--warmup-seconds 2] [--record-size 100] [--linger-ms L]
 *
 * Does what examples/bench_client.rs's `latency` does: a KafkaConsumer
 * (client defaults: fetch.min.bytes 1, fetch.max.wait.ms 500; no group,
 * every partition assigned at the beginning) polls once; then a
 * KafkaProducer (client defaults: linger.ms 5, acks all, idempotent) on
 * its own thread sends --rate records/s paced to a schedule (record i due
 * at start + i/rate), each with timestamp = System.currentTimeMillis()
 * just before send(). The consumer (main thread) takes the wall clock in
 * µs when poll() returns and records, for each measured record (value
 * starting with 'M'; warm-up records start with 'W'), that time minus the
 * record's timestamp. Prints one JSON line like the other drivers.
 */
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;

public final class LatencyBench {
    private static long wallMicros() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000;
    }

    private static byte[] payload(byte mark, int size) {
        byte[] v = new byte[Math.max(size, 1)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (byte) ('A' + i % 26);
        }
        v[0] = mark;
        return v;
    }

    private static double percentileMs(long[] sorted, double p) {
        int rank = (int) Math.ceil(p * sorted.length);
        rank = Math.max(1, Math.min(sorted.length, rank));
        return sorted[rank - 1] / 1000.0;
    }

    private static void die(String message) {
        System.err.println("LatencyBench: " + message);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = "127.0.0.1:9092";
        String topic = null;
        long rate = 10_000;
        long seconds = 20;
        long warmupSeconds = 2;
        int size = 100;
        String lingerMs = null;
        for (int i = 0; i < args.length; i++) {
            if (i + 1 >= args.length) {
                die(args[i] + " needs a value");
            }
            String v = args[++i];
            switch (args[i - 1]) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--rate": rate = Long.parseLong(v); break;
                case "--seconds": seconds = Long.parseLong(v); break;
                case "--warmup-seconds": warmupSeconds = Long.parseLong(v); break;
                case "--record-size": size = Integer.parseInt(v); break;
                case "--linger-ms": lingerMs = v; break;
                default: die("unknown option " + args[i - 1]);
            }
        }
        if (topic == null) {
            die("--topic is required");
        }
        if (rate <= 0 || seconds <= 0) {
            die("--rate and --seconds must be positive");
        }
        final long warm = rate * warmupSeconds;
        final long measured = rate * seconds;
        final long total = warm + measured;

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
        if (infos == null || infos.isEmpty()) {
            die("topic " + topic + " not found");
        }
        List<TopicPartition> tps = new ArrayList<>();
        for (PartitionInfo p : infos) {
            tps.add(new TopicPartition(topic, p.partition()));
        }
        consumer.assign(tps);
        consumer.seekToBeginning(tps);
        if (!consumer.poll(Duration.ofMillis(200)).isEmpty()) {
            die("topic " + topic + " is not empty");
        }

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (lingerMs != null) {
            pp.put(ProducerConfig.LINGER_MS_CONFIG, lingerMs);
        }
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        producer.partitionsFor(topic);

        final byte[] warmPayload = payload((byte) 'W', size);
        final byte[] measuredPayload = payload((byte) 'M', size);
        final String t = topic;
        final long r = rate;
        final AtomicLong failed = new AtomicLong();
        final AtomicReference<Exception> firstError = new AtomicReference<>();
        final AtomicReference<Throwable> producerFailure = new AtomicReference<>();
        final long[] sendWindow = new long[2];
        Thread sender = new Thread(() -> {
            try {
                long start = System.nanoTime();
                long i = 0;
                while (i < total) {
                    long due = (System.nanoTime() - start) * r / 1_000_000_000L + 1;
                    long upTo = Math.min(due, total);
                    while (i < upTo) {
                        long now = System.nanoTime();
                        byte[] value = i < warm ? warmPayload : measuredPayload;
                        producer.send(new ProducerRecord<>(t, null, System.currentTimeMillis(), null, value),
                            (md, e) -> {
                                if (e != null && failed.incrementAndGet() == 1) {
                                    firstError.set(e);
                                }
                            });
                        if (i == warm) {
                            sendWindow[0] = now;
                        }
                        sendWindow[1] = now;
                        i++;
                    }
                    if (i < total) {
                        long wait = start + i * 1_000_000_000L / r - System.nanoTime();
                        if (wait > 0) {
                            LockSupport.parkNanos(wait);
                        }
                    }
                }
                producer.flush();
            } catch (Throwable e) {
                producerFailure.set(e);
            }
        }, "latency-producer");
        sender.start();

        long[] latencies = new long[(int) measured];
        int n = 0;
        long got = 0;
        long bytes = 0;
        long deadline = Long.MAX_VALUE;
        while (got < total) {
            ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
            long now = wallMicros();
            for (ConsumerRecord<byte[], byte[]> rec : records) {
                got++;
                byte[] v = rec.value();
                if (v != null && v.length > 0 && v[0] == 'M') {
                    if (n < latencies.length) {
                        latencies[n] = now - rec.timestamp() * 1000;
                    }
                    n++;
                    bytes += v.length;
                }
            }
            if (producerFailure.get() != null) {
                die("producer: " + producerFailure.get());
            }
            if (deadline == Long.MAX_VALUE && !sender.isAlive()) {
                deadline = System.nanoTime() + 30_000_000_000L;
            }
            if (System.nanoTime() > deadline) {
                die(got + " of " + total + " records arrived within 30 s of the last send");
            }
        }
        sender.join();
        if (producerFailure.get() != null) {
            die("producer: " + producerFailure.get());
        }
        if (failed.get() > 0) {
            die(failed.get() + " records failed, first: " + firstError.get());
        }
        producer.close();
        consumer.close();
        if (n != measured) {
            die(n + " measured records, " + measured + " sent");
        }
        Arrays.sort(latencies);
        double mean = 0;
        for (long l : latencies) {
            mean += l;
        }
        mean = mean / latencies.length / 1000.0;
        System.out.println(String.format(Locale.ROOT,
            "{\"client\":\"java\",\"op\":\"latency\",\"records\":%d,\"bytes\":%d,\"seconds\":%.6f,"
                + "\"version\":\"%s\",\"rate\":%d,\"warmup_records\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                + "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f}",
            measured, bytes, (sendWindow[1] - sendWindow[0]) / 1e9, AppInfoParser.getVersion(), r, warm,
            percentileMs(latencies, 0.50), percentileMs(latencies, 0.99), percentileMs(latencies, 0.999),
            percentileMs(latencies, 1.0), mean));
    }
}
