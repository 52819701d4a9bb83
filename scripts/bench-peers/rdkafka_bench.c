/*
 * The librdkafka peer of scripts/bench: produces N records of S bytes,
 * consumes N records from the beginning of every partition of a topic, or
 * measures end-to-end latency, and prints one JSON line with the time the
 * work took. Built by scripts/bench with gcc against the system's
 * librdkafka (Debian: librdkafka-dev); a benchmark peer only, never a
 * dependency of skotch.
 *
 *   rdkafka-bench produce --bootstrap B --topic T --records N --record-size S
 *       [--linger-ms L] [--batch-size BYTES] [--buffer-memory BYTES]
 *       [--acks all|1|0] [--idempotence true|false|default]
 *       [--compression none|gzip|snappy|lz4|zstd]
 *   rdkafka-bench consume --bootstrap B --topic T --records N
 *   rdkafka-bench latency --bootstrap B --topic T [--rate 10000]
 *       [--seconds 20] [--warmup-seconds 2] [--record-size 100]
 *       [--linger-ms L]
 *   rdkafka-bench version
 *
 * Options left out keep librdkafka's defaults. --batch-size sets
 * batch.size and lifts batch.num.messages (default 10000) so that bytes
 * bind, as in the Java client; --buffer-memory sets
 * queue.buffering.max.kbytes and lifts queue.buffering.max.messages
 * (default 100000) likewise.
 *
 * The timer starts after rd_kafka_new and stops when the last delivery
 * report arrived (produce, after rd_kafka_flush) or the last record was read
 * (consume), like the other drivers. The payload is built once and handed
 * to librdkafka without RD_KAFKA_MSG_F_COPY (it stays valid throughout).
 *
 * latency does what examples/bench_client.rs's does: a consumer (defaults:
 * fetch.min.bytes 1, fetch.wait.max.ms 500; every partition assigned at
 * the beginning) polls for 200 ms; then a producer (its own handle,
 * defaults: linger.ms 5, not idempotent) on its own thread sends --rate
 * records/s paced to a schedule (record i due at start + i/rate), each
 * with RD_KAFKA_V_TIMESTAMP = the wall clock in ms just before producev.
 * The main thread takes the wall clock in us whenever
 * rd_kafka_consumer_poll returns a record and records, for each measured
 * record (value starting with 'M'; warm-up ones start with 'W'), that time
 * minus the record's timestamp.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static const char *bootstrap = "127.0.0.1:9092";
static const char *topic = NULL;
static long long records = 1000000;
static long long record_size = 100;
static const char *linger_ms = NULL;
static const char *batch_size = NULL;
static const char *buffer_memory = NULL;
static const char *acks = "all";
static const char *idempotence = "default";
static const char *compression = "none";
static long long rate = 10000;
static long long lat_seconds = 20;
static long long warmup_seconds = 2;

static long long delivered = 0;
static long long failed = 0;
static char first_error[512] = "";

static void die(const char *fmt, const char *arg) {
        fprintf(stderr, "rdkafka-bench: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n");
        exit(1);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value) {
        char err[512];
        if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
                fprintf(stderr, "rdkafka-bench: %s=%s: %s\n", name, value,
                        err);
                exit(1);
        }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque) {
        (void)rk;
        (void)opaque;
        if (m->err) {
                if (failed++ == 0)
                        snprintf(first_error, sizeof(first_error), "%s",
                                 rd_kafka_err2str(m->err));
        } else {
                delivered++;
        }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        (void)opaque;
        fprintf(stderr, "rdkafka-bench: error %s: %s\n",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char buf[512];
                rd_kafka_fatal_error(rk, buf, sizeof(buf));
                die("fatal: %s", buf);
        }
}

static void emit(const char *op, long long n, long long bytes,
                 double seconds) {
        printf("{\"client\":\"librdkafka\",\"op\":\"%s\",\"records\":%lld,"
               "\"bytes\":%lld,\"seconds\":%.6f,\"version\":\"%s\"}\n",
               op, n, bytes, seconds, rd_kafka_version_str());
        fflush(stdout);
}

static void produce(void) {
        char err[512], buf[64];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        set(conf, "bootstrap.servers", bootstrap);
        set(conf, "acks", acks);
        if (strcmp(idempotence, "default") != 0)
                set(conf, "enable.idempotence", idempotence);
        set(conf, "compression.type", compression);
        if (linger_ms)
                set(conf, "linger.ms", linger_ms);
        if (batch_size) {
                set(conf, "batch.size", batch_size);
                set(conf, "batch.num.messages", "1000000");
        }
        if (buffer_memory) {
                long long kb = atoll(buffer_memory) / 1024;
                if (kb < 1)
                        kb = 1;
                snprintf(buf, sizeof(buf), "%lld", kb);
                set(conf, "queue.buffering.max.kbytes", buf);
                set(conf, "queue.buffering.max.messages", "10000000");
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk)
                die("rd_kafka_new: %s", err);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);

        char *payload = malloc((size_t)record_size + 1);
        for (long long i = 0; i < record_size; i++)
                payload[i] = (char)('A' + i % 26);

        double start = now_s();
        for (long long i = 0; i < records;) {
                if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, payload,
                                     (size_t)record_size, NULL, 0,
                                     NULL) == -1) {
                        rd_kafka_resp_err_t e = rd_kafka_last_error();
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                /* Wait for room: serve delivery reports. */
                                rd_kafka_poll(rk, 10);
                                continue;
                        }
                        die("produce: %s", rd_kafka_err2str(e));
                }
                i++;
                if ((i & 1023) == 0)
                        rd_kafka_poll(rk, 0);
        }
        while (rd_kafka_outq_len(rk) > 0)
                rd_kafka_flush(rk, 1000);
        double seconds = now_s() - start;
        if (failed > 0) {
                fprintf(stderr, "rdkafka-bench: %lld records failed, first: %s\n",
                        failed, first_error);
                exit(1);
        }
        if (delivered != records) {
                fprintf(stderr, "rdkafka-bench: %lld of %lld delivered\n",
                        delivered, records);
                exit(1);
        }
        emit("produce", records, records * record_size, seconds);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        free(payload);
}

static void consume(void) {
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        set(conf, "bootstrap.servers", bootstrap);
        /* Partitions are assigned, not subscribed: the group id is only
         * needed by the high-level consumer API and nothing is committed. */
        set(conf, "group.id", "skotch-bench-rdkafka");
        set(conf, "enable.auto.commit", "false");
        set(conf, "enable.auto.offset.store", "false");
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!rk)
                die("rd_kafka_new: %s", err);
        rd_kafka_poll_set_consumer(rk);

        double start = now_s();
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e =
            rd_kafka_metadata(rk, 0, rkt, &md, 30000);
        if (e)
                die("metadata: %s", rd_kafka_err2str(e));
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt == 0)
                die("topic %s not found", topic);
        int parts = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(list, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        e = rd_kafka_assign(rk, list);
        if (e)
                die("assign: %s", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(list);

        long long got = 0, bytes = 0;
        while (got < records) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
                if (!m)
                        continue;
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                die("consume: %s", rd_kafka_message_errstr(m));
                } else {
                        got++;
                        bytes += (long long)(m->len + m->key_len);
                }
                rd_kafka_message_destroy(m);
        }
        double seconds = now_s() - start;
        emit("consume", got, bytes, seconds);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static long long wall_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct lat_producer {
        rd_kafka_t *rk;
        long long warm, total;
        char *warm_payload, *payload;
        long long window_start, window_end; /* mono ns, measured sends */
        atomic_int done;
};

static void *lat_produce(void *arg) {
        struct lat_producer *p = arg;
        long long start = mono_ns(), i = 0;
        while (i < p->total) {
                long long due = (mono_ns() - start) * rate / 1000000000LL + 1;
                if (due > p->total)
                        due = p->total;
                while (i < due) {
                        long long now = mono_ns();
                        char *value = i < p->warm ? p->warm_payload : p->payload;
                        rd_kafka_resp_err_t e = rd_kafka_producev(
                            p->rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_VALUE(value, (size_t)record_size),
                            RD_KAFKA_V_TIMESTAMP(wall_us() / 1000),
                            RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                rd_kafka_poll(p->rk, 1);
                                continue;
                        }
                        if (e)
                                die("produce: %s", rd_kafka_err2str(e));
                        if (i == p->warm)
                                p->window_start = now;
                        p->window_end = now;
                        i++;
                }
                rd_kafka_poll(p->rk, 0);
                if (i < p->total) {
                        long long next = start + i * 1000000000LL / rate;
                        struct timespec ts = {next / 1000000000LL,
                                              next % 1000000000LL};
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
                                        NULL);
                }
        }
        while (rd_kafka_outq_len(p->rk) > 0)
                rd_kafka_flush(p->rk, 1000);
        atomic_store(&p->done, 1);
        return NULL;
}

static int cmp_ll(const void *a, const void *b) {
        long long x = *(const long long *)a, y = *(const long long *)b;
        return (x > y) - (x < y);
}

static double percentile_ms(const long long *v, long long n, double p) {
        long long rank = (long long)(p * (double)n);
        if ((double)rank < p * (double)n)
                rank++;
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return (double)v[rank - 1] / 1000.0;
}

static void latency(void) {
        char err[512];
        if (record_size < 1)
                record_size = 1;
        long long warm = rate * warmup_seconds, measured = rate * lat_seconds;
        long long total = warm + measured;

        /* The consumer first, as in consume (assign, no group join). */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        set(conf, "bootstrap.servers", bootstrap);
        set(conf, "group.id", "skotch-bench-rdkafka");
        set(conf, "enable.auto.commit", "false");
        set(conf, "enable.auto.offset.store", "false");
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!rk)
                die("rd_kafka_new: %s", err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
        if (e)
                die("metadata: %s", rd_kafka_err2str(e));
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt == 0)
                die("topic %s not found", topic);
        int parts = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(list, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        e = rd_kafka_assign(rk, list);
        if (e)
                die("assign: %s", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(list);
        long long ready = mono_ns() + 200000000LL;
        while (mono_ns() < ready) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
                if (!m)
                        continue;
                if (!m->err)
                        die("topic %s is not empty", topic);
                rd_kafka_message_destroy(m);
        }

        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        set(pconf, "bootstrap.servers", bootstrap);
        set(pconf, "acks", "all");
        set(pconf, "compression.type", "none");
        if (linger_ms)
                set(pconf, "linger.ms", linger_ms);
        rd_kafka_conf_set_dr_msg_cb(pconf, dr_msg_cb);
        rd_kafka_conf_set_error_cb(pconf, error_cb);
        struct lat_producer p = {0};
        p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        if (!p.rk)
                die("rd_kafka_new: %s", err);
        rd_kafka_topic_t *prkt = rd_kafka_topic_new(p.rk, topic, NULL);
        md = NULL;
        e = rd_kafka_metadata(p.rk, 0, prkt, &md, 30000);
        if (e)
                die("metadata: %s", rd_kafka_err2str(e));
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(prkt);
        p.warm = warm;
        p.total = total;
        p.warm_payload = malloc((size_t)record_size);
        p.payload = malloc((size_t)record_size);
        for (long long i = 0; i < record_size; i++)
                p.warm_payload[i] = p.payload[i] = (char)('A' + i % 26);
        p.warm_payload[0] = 'W';
        p.payload[0] = 'M';
        pthread_t thread;
        if (pthread_create(&thread, NULL, lat_produce, &p) != 0)
                die("pthread_create failed%s", "");

        long long *lat = malloc((size_t)measured * sizeof(long long));
        long long got = 0, n = 0, bytes = 0, deadline = 0;
        while (got < total) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
                long long now = wall_us();
                if (m) {
                        if (m->err) {
                                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        die("consume: %s",
                                            rd_kafka_message_errstr(m));
                        } else {
                                got++;
                                if (m->len > 0 &&
                                    ((const char *)m->payload)[0] == 'M') {
                                        rd_kafka_timestamp_type_t tt;
                                        long long ts =
                                            rd_kafka_message_timestamp(m, &tt);
                                        if (n < measured)
                                                lat[n] = now - ts * 1000;
                                        n++;
                                        bytes += (long long)m->len;
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
                if (deadline == 0 && atomic_load(&p.done))
                        deadline = mono_ns() + 30000000000LL;
                if (deadline && mono_ns() > deadline) {
                        fprintf(stderr,
                                "rdkafka-bench: %lld of %lld records arrived "
                                "within 30 s of the last send\n",
                                got, total);
                        exit(1);
                }
        }
        pthread_join(thread, NULL);
        if (failed > 0) {
                fprintf(stderr, "rdkafka-bench: %lld records failed, first: %s\n",
                        failed, first_error);
                exit(1);
        }
        if (n != measured) {
                fprintf(stderr, "rdkafka-bench: %lld measured records, %lld sent\n",
                        n, measured);
                exit(1);
        }
        qsort(lat, (size_t)n, sizeof(long long), cmp_ll);
        double mean = 0;
        for (long long i = 0; i < n; i++)
                mean += (double)lat[i];
        mean = mean / (double)n / 1000.0;
        printf("{\"client\":\"librdkafka\",\"op\":\"latency\",\"records\":%lld,"
               "\"bytes\":%lld,\"seconds\":%.6f,\"version\":\"%s\",\"rate\":%lld,"
               "\"warmup_records\":%lld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f}\n",
               measured, bytes, (double)(p.window_end - p.window_start) / 1e9,
               rd_kafka_version_str(), rate, warm, percentile_ms(lat, n, 0.50),
               percentile_ms(lat, n, 0.99), percentile_ms(lat, n, 0.999),
               percentile_ms(lat, n, 1.0), mean);
        fflush(stdout);
        rd_kafka_destroy(p.rk);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        free(lat);
        free(p.payload);
        free(p.warm_payload);
}

static const char *value_of(int argc, char **argv, int *i) {
        if (*i + 1 >= argc)
                die("%s needs a value", argv[*i]);
        return argv[++*i];
}

int main(int argc, char **argv) {
        if (argc < 2)
                die("usage: rdkafka-bench produce|consume|latency|version [options]%s", "");
        const char *op = argv[1];
        if (strcmp(op, "version") == 0) {
                printf("%s\n", rd_kafka_version_str());
                return 0;
        }
        for (int i = 2; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--bootstrap"))
                        bootstrap = value_of(argc, argv, &i);
                else if (!strcmp(a, "--topic"))
                        topic = value_of(argc, argv, &i);
                else if (!strcmp(a, "--records"))
                        records = atoll(value_of(argc, argv, &i));
                else if (!strcmp(a, "--record-size"))
                        record_size = atoll(value_of(argc, argv, &i));
                else if (!strcmp(a, "--linger-ms"))
                        linger_ms = value_of(argc, argv, &i);
                else if (!strcmp(a, "--batch-size"))
                        batch_size = value_of(argc, argv, &i);
                else if (!strcmp(a, "--buffer-memory"))
                        buffer_memory = value_of(argc, argv, &i);
                else if (!strcmp(a, "--acks"))
                        acks = value_of(argc, argv, &i);
                else if (!strcmp(a, "--idempotence"))
                        idempotence = value_of(argc, argv, &i);
                else if (!strcmp(a, "--compression"))
                        compression = value_of(argc, argv, &i);
                else if (!strcmp(a, "--rate"))
                        rate = atoll(value_of(argc, argv, &i));
                else if (!strcmp(a, "--seconds"))
                        lat_seconds = atoll(value_of(argc, argv, &i));
                else if (!strcmp(a, "--warmup-seconds"))
                        warmup_seconds = atoll(value_of(argc, argv, &i));
                else
                        die("unknown option %s", a);
        }
        if (!topic)
                die("--topic is required%s", "");
        if (strcmp(idempotence, "default") && strcmp(idempotence, "true") &&
            strcmp(idempotence, "false"))
                die("bad --idempotence %s", idempotence);
        if (records <= 0 || record_size < 0)
                die("bad --records or --record-size%s", "");
        if (rate <= 0 || lat_seconds <= 0 || warmup_seconds < 0)
                die("bad --rate, --seconds or --warmup-seconds%s", "");
        if (!strcmp(op, "produce"))
                produce();
        else if (!strcmp(op, "consume"))
                consume();
        else if (!strcmp(op, "latency"))
                latency();
        else
                die("unknown command %s", op);
        return 0;
}
