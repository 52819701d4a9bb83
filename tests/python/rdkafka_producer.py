"""Produces deterministic records with librdkafka (confluent-kafka):
acks=all, idempotence on, the same records as tests/java/JavaProducer.java.

Usage: rdkafka_producer.py <bootstrap> <topic> <count> [--key-prefix K]
    [--null-every N] [--headers] [--compression none|gzip|snappy|lz4|zstd]
    [--compression-level L] [--linger-ms MS] [--timeout-ms T]

Record i (0-based) has key K + str(i % 1000) (K defaults to "key-") and
value "value-" + str(i), both UTF-8; with --null-every N the value is null
when i % N == 0. With --headers it carries the headers, in this order,
h="a", h="b" (a duplicate key) and n=<i as decimal>.

--compression sets librdkafka's compression.codec (its compression.type);
--linger-ms (default 10) lets batches fill, since compression works across
the records of a batch. --timeout-ms (default 30000) bounds the final flush.

After flushing, prints one JSON line per record, in order of i:
{"i":0,"partition":3,"offset":0,"timestamp":1700000000000,"key":"key-0","value":"value-0"}
("value":null for null values). Every delivery report is checked: exits 1
if any record failed or was not reported within the timeout, 2 on bad usage.
"""

import json
import sys

from confluent_kafka import KafkaException, Producer

from rdkafka_common import CODECS, Args, announce, utf8

USAGE = (
    "usage: rdkafka_producer.py <bootstrap> <topic> <count> [--key-prefix K] [--null-every N]"
    " [--headers] [--compression none|gzip|snappy|lz4|zstd] [--compression-level L]"
    " [--linger-ms MS] [--timeout-ms T]"
)


def main(argv):
    args = Args(
        argv,
        USAGE,
        ("bootstrap", "topic", "count"),
        flags=("--headers",),
        options=(
            "--key-prefix",
            "--null-every",
            "--compression",
            "--compression-level",
            "--linger-ms",
            "--timeout-ms",
        ),
    )
    count = args.int("count")
    key_prefix = args.get("--key-prefix", "key-")
    null_every = args.int("--null-every", 0)
    headers = args.get("--headers", False)
    compression = args.get("--compression", "none")
    if compression not in CODECS:
        args.fail()
    timeout_ms = args.int("--timeout-ms", 30000)
    announce("rdkafka_producer")

    config = {
        "bootstrap.servers": args.get("bootstrap"),
        "client.id": "skotch-rdkafka-producer",
        "acks": "all",
        "enable.idempotence": True,
        "compression.codec": compression,
        "linger.ms": args.int("--linger-ms", 10),
        "error_cb": on_error,
    }
    level = args.int("--compression-level")
    if level is not None:
        config["compression.level"] = level
    producer = Producer(config)

    topic = args.get("topic")
    keys, values, results = [], [], [None] * count
    for i in range(count):
        key = f"{key_prefix}{i % 1000}"
        value = None if null_every > 0 and i % null_every == 0 else f"value-{i}"
        record_headers = None
        if headers:
            record_headers = [("h", b"a"), ("h", b"b"), ("n", str(i).encode("ascii"))]
        keys.append(key)
        values.append(value)
        send(producer, topic, utf8(key), utf8(value), record_headers, results, i)
    left = producer.flush(timeout_ms / 1000)

    failed = 0
    out = []
    for i, result in enumerate(results):
        if result is None or isinstance(result, str):
            failed += 1
            print(f"record {i} failed: {result or 'no delivery report'}", file=sys.stderr)
            continue
        partition, offset, timestamp = result
        out.append(
            json.dumps(
                {
                    "i": i,
                    "partition": partition,
                    "offset": offset,
                    "timestamp": timestamp,
                    "key": keys[i],
                    "value": values[i],
                },
                separators=(",", ":"),
            )
        )
    sys.stdout.write("".join(line + "\n" for line in out))
    sys.stdout.flush()
    if failed or left:
        print(f"{failed} of {count} records failed ({left} still queued)", file=sys.stderr)
        sys.exit(1)


def send(producer, topic, key, value, headers, results, i):
    """produce() with a delivery callback storing (partition, offset,
    timestamp) or the error text in results[i]; waits for queue room."""

    def delivered(err, msg):
        if err is not None:
            results[i] = str(err)
        else:
            results[i] = (msg.partition(), msg.offset(), msg.timestamp()[1])

    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.1)


def on_error(err):
    print(f"rdkafka_producer: {err}", file=sys.stderr)
    if err.fatal():
        raise KafkaException(err)


if __name__ == "__main__":
    main(sys.argv[1:])
