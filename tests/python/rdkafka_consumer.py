"""Reads a topic with librdkafka (confluent-kafka): all partitions assigned
(no group membership, no commits), from the earliest offset, CRCs checked.

Usage: rdkafka_consumer.py <bootstrap> <topic> <expectedCount>
    [--timeout-ms T] [--read-committed]

Polls until at least expectedCount records arrived (all records of the last
poll are printed, so a fuller topic may print more) or T ms (default 30000)
passed. Prints one JSON line per record, in the order received (offset
order within a partition), exactly as tests/java/JavaConsumer.java does:

{"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"timestampType":"CreateTime",
 "key":"a2V5LTU=","value":null,"headers":[["h","YQ=="],["h","Yg=="]]}

key, value and header values are base64 (standard alphabet, padded) or
null; headers keep their order and duplicates. isolation.level is
read_uncommitted unless --read-committed (librdkafka's own default is
read_committed; Java's is read_uncommitted, which this mirrors).

Exits 1 on timeout (after printing what it got) or on a consume error
(for example a corrupt batch: librdkafka reports those as errors instead
of records), 2 on bad usage.
"""

import json
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    TopicPartition,
)

from rdkafka_common import Args, announce, b64

USAGE = "usage: rdkafka_consumer.py <bootstrap> <topic> <expectedCount> [--timeout-ms T] [--read-committed]"

TIMESTAMP_TYPES = {
    TIMESTAMP_CREATE_TIME: "CreateTime",
    TIMESTAMP_LOG_APPEND_TIME: "LogAppendTime",
}


def main(argv):
    args = Args(
        argv,
        USAGE,
        ("bootstrap", "topic", "expected"),
        flags=("--read-committed",),
        options=("--timeout-ms",),
    )
    topic = args.get("topic")
    expected = args.int("expected")
    timeout_ms = args.int("--timeout-ms", 30000)
    announce("rdkafka_consumer")

    consumer = Consumer(
        {
            "bootstrap.servers": args.get("bootstrap"),
            "client.id": "skotch-rdkafka-consumer",
            # The Python binding insists on a group id even though assign()
            # never joins the group; nothing is committed to it.
            "group.id": "skotch-rdkafka-consumer-unused",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            "check.crcs": True,
            "isolation.level": "read_committed" if args.get("--read-committed") else "read_uncommitted",
        }
    )
    deadline = time.monotonic() + timeout_ms / 1000
    received = 0
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_ms / 1000)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            error = info.error if info is not None else "missing"
            print(f"topic {topic} has no partitions (does it exist?): {error}", file=sys.stderr)
            sys.exit(1)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(info.partitions)])
        while received < expected:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            out = []
            for msg in consumer.consume(num_messages=1000, timeout=min(left, 0.5)):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    print(f"rdkafka_consumer: consume error: {err}", file=sys.stderr)
                    if not err.retriable():
                        sys.stdout.write("".join(out))
                        sys.stdout.flush()
                        sys.exit(1)
                    continue
                out.append(line(msg) + "\n")
                received += 1
            sys.stdout.write("".join(out))
    finally:
        consumer.close()
    sys.stdout.flush()
    if received < expected:
        print(
            f"timed out after {timeout_ms} ms with {received} of {expected} records",
            file=sys.stderr,
        )
        sys.exit(1)


def line(msg):
    ts_type, ts = msg.timestamp()
    return json.dumps(
        {
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "timestamp": ts,
            "timestampType": TIMESTAMP_TYPES.get(ts_type, "NoTimestampType"),
            "key": b64(msg.key()),
            "value": b64(msg.value()),
            "headers": [[k, b64(v)] for k, v in (msg.headers() or [])],
        },
        separators=(",", ":"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
