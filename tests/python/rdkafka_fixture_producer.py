"""Produces the golden-fixture record set (scripts/capture-fixtures) with
librdkafka to partition 0 of a topic, compressed with one codec: the same
50 records as tests/java/FixtureProducer.java (see there for the list).

Usage: rdkafka_fixture_producer.py <bootstrap> <topic> <none|gzip|snappy|lz4|zstd>

Prints a first JSON line {"client":"librdkafka","version":"2.16.0"}, then one
line per record in order: offset, timestamp, key, value and headers (base64
or null). Exits 1 if a record was not delivered.
"""

import json
import sys

from confluent_kafka import Producer, libversion

from rdkafka_common import CODECS, b64

COUNT = 50


def timestamp(i):
    return 1_699_999_995_000 if i == 7 else 1_700_000_000_000 + 10 * i


def key(i):
    if i == 0:
        return None
    return b"" if i == 1 else f"key-{i}".encode()


def value(i):
    if i % 10 == 3:
        return None
    if i == 4:
        return b""
    if i % 7 == 5:
        return bytes((i * 31 + j * 7) & 0xFF for j in range(300))
    if i == 49:
        text, k = [], 0
        while sum(map(len, text)) < 70_000:
            text.append(f"line {k} of the large fixture value\n")
            k += 1
        return "".join(text).encode()[:70_000]
    return f"value-{i}".encode()


def headers(i):
    if i == 6:
        return []
    h = [("h", b"a"), ("h", b"b"), ("n", str(i).encode())]
    if i % 5 == 2:
        h.append(("null", None))
    if i % 9 == 4:
        h.append(("bin", bytes([0, 1, 2, 0xFF, 0xFE])))
    return h


def main(argv):
    if len(argv) != 3 or argv[2] not in CODECS:
        print("usage: rdkafka_fixture_producer.py <bootstrap> <topic> <none|gzip|snappy|lz4|zstd>", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, codec = argv
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "skotch-fixture-producer",
            "acks": "all",
            "enable.idempotence": True,
            "compression.codec": codec,
            # All 50 records in one batch.
            "linger.ms": 100,
        }
    )
    results = [None] * COUNT

    def on_delivery(i):
        def cb(err, msg):
            results[i] = str(err) if err else (msg.offset(), msg.timestamp()[1])

        return cb

    for i in range(COUNT):
        producer.produce(
            topic,
            partition=0,
            key=key(i),
            value=value(i),
            headers=headers(i),
            timestamp=timestamp(i),
            on_delivery=on_delivery(i),
        )
    producer.flush(30)

    lines = [json.dumps({"client": "librdkafka", "version": libversion()[0]}, separators=(",", ":"))]
    failed = 0
    for i, result in enumerate(results):
        if not isinstance(result, tuple):
            failed += 1
            print(f"record {i} failed: {result or 'no delivery report'}", file=sys.stderr)
            continue
        offset, ts = result
        lines.append(
            json.dumps(
                {
                    "offset": offset,
                    "timestamp": ts,
                    "key": b64(key(i)),
                    "value": b64(value(i)),
                    "headers": [[k, b64(v)] for k, v in headers(i)],
                },
                separators=(",", ":"),
            )
        )
    print("\n".join(lines))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
