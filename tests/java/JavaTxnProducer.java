import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Writes committed and aborted transactions, interleaved in one partition,
 * with the Java transactional producer (KIP-98), so read_committed
 * filtering can be checked against a real log.
 *
 * <p>Usage: {@code JavaTxnProducer <bootstrap> <topic> <rounds> <perTxn>
 * [--compression none|gzip|snappy|lz4|zstd]}
 *
 * <p>Two transactional producers ({@code txn-a} and {@code txn-b}, ids
 * made unique per topic) and one plain producer write to partition 0. In
 * round {@code r} (0-based): producer A opens a transaction and sends
 * {@code perTxn} records, producer B opens one and sends {@code perTxn},
 * the plain producer sends one record, then A sends {@code perTxn} more;
 * then A commits and B aborts when {@code r} is even, A aborts and B
 * commits when odd. So every round leaves interleaved batches of a
 * committed and an aborted transaction, plus a non-transactional record.
 *
 * <p>Values are {@code "<producer>-<r>-<j>"} (producer a, b or plain),
 * keys {@code "k-<j>"}, one header {@code txn=<producer>}. Prints one
 * line per record that a read_committed consumer must see, in send order
 * per producer: {@code {"value":"a-0-3","committed":true}}, and the same
 * with {@code "committed":false} for the aborted ones.
 */
public final class JavaTxnProducer {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            usage();
        }
        String bootstrap = args[0];
        String topic = args[1];
        int rounds = Integer.parseInt(args[2]);
        int perTxn = Integer.parseInt(args[3]);
        String compression = "none";
        for (int i = 4; i < args.length; i++) {
            if (args[i].equals("--compression") && i + 1 < args.length) {
                compression = args[++i];
            } else {
                usage();
            }
        }
        StringBuilder out = new StringBuilder();
        try (KafkaProducer<byte[], byte[]> a = producer(bootstrap, topic + "-txn-a", compression);
                KafkaProducer<byte[], byte[]> b = producer(bootstrap, topic + "-txn-b", compression);
                KafkaProducer<byte[], byte[]> plain = producer(bootstrap, null, compression)) {
            a.initTransactions();
            b.initTransactions();
            for (int r = 0; r < rounds; r++) {
                boolean aCommits = r % 2 == 0;
                a.beginTransaction();
                b.beginTransaction();
                for (int j = 0; j < perTxn; j++) {
                    send(a, topic, "a", r, j);
                }
                a.flush();
                for (int j = 0; j < perTxn; j++) {
                    send(b, topic, "b", r, j);
                }
                b.flush();
                send(plain, topic, "plain", r, 0).get();
                for (int j = perTxn; j < 2 * perTxn; j++) {
                    send(a, topic, "a", r, j);
                }
                a.flush();
                if (aCommits) {
                    a.commitTransaction();
                    b.abortTransaction();
                } else {
                    a.abortTransaction();
                    b.commitTransaction();
                }
                for (int j = 0; j < 2 * perTxn; j++) {
                    line(out, "a-" + r + "-" + j, aCommits);
                }
                for (int j = 0; j < perTxn; j++) {
                    line(out, "b-" + r + "-" + j, !aCommits);
                }
                line(out, "plain-" + r + "-0", true);
            }
        }
        System.out.print(out);
        System.out.flush();
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrap, String txnId, String compression) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skotch-java-txn-producer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        if (txnId != null) {
            props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        }
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        ClientProps.addFromEnv(props);
        return new KafkaProducer<>(props);
    }

    private static java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata> send(
            KafkaProducer<byte[], byte[]> p, String topic, String who, int r, int j) {
        ProducerRecord<byte[], byte[]> rec =
                new ProducerRecord<>(topic, 0, Json.utf8("k-" + j), Json.utf8(who + "-" + r + "-" + j));
        rec.headers().add("txn", Json.utf8(who));
        return p.send(rec);
    }

    private static void line(StringBuilder out, String value, boolean committed) {
        out.append("{\"value\":").append(Json.str(value))
                .append(",\"committed\":").append(committed).append("}\n");
    }

    private static void usage() {
        System.err.println("usage: JavaTxnProducer <bootstrap> <topic> <rounds> <perTxn>"
                + " [--compression none|gzip|snappy|lz4|zstd]");
        System.exit(2);
    }
}
