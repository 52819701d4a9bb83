"""librdkafka's side (confluent-kafka) of the mock cluster's conformance run
(tests/mock_conformance.rs): what an application does with Kafka, against
`skotch mock-cluster` / `skotch_mock::MockCluster`. The same modes and
output as tests/java/MockConformance.java.

Usage:
  rdkafka_mock_conformance.py produce <bootstrap> <topic> <partitions> <count>
      an idempotent producer (enable.idempotence=true, acks=all) sends record
      i (key k-i, value v-i) to partition i % partitions; every delivery
      report is checked. Prints `sent <partition> <offset> <value>` per
      record, in order of i.
  rdkafka_mock_conformance.py consume <bootstrap> <topic> <count> <timeoutMs>
      a consumer that joins no group assigns every partition from the
      beginning and reads until count records came. Prints
      `rec <partition> <offset> <value>` per record.
  rdkafka_mock_conformance.py group <bootstrap> <topic> <partitions> <groupId>
      <classic|consumer> <count> <timeoutMs>
      two group members subscribe to the (empty) topic; once both own
      partitions and together all of them, an idempotent producer sends
      count records (g-i to partition i % partitions); the members read
      until all came, commit synchronously and close; then a fresh consumer
      of the group fetches the committed offsets. Prints
      `assigned <member> <p,...>` on each assignment,
      `rec <member> <partition> <offset> <value>` per record and
      `committed <partition> <offset>` per partition at the end.

Any failure (a delivery error, a timeout, a client error) is one line on
stderr and exit status 1; bad usage exits 2.
"""

import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from rdkafka_common import announce

USAGE = (
    "usage: rdkafka_mock_conformance.py produce <bootstrap> <topic> <partitions> <count>\n"
    "       rdkafka_mock_conformance.py consume <bootstrap> <topic> <count> <timeoutMs>\n"
    "       rdkafka_mock_conformance.py group <bootstrap> <topic> <partitions> <groupId>"
    " <classic|consumer> <count> <timeoutMs>"
)


class Failure(Exception):
    """A failed check: its message goes to stderr, the exit status is 1."""


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def errors_cb(prefix):
    """librdkafka's error callback: its errors go to stderr (most are
    retried by librdkafka; the checks decide what failed)."""

    def cb(err):
        print(f"{prefix}: client error: {err}", file=sys.stderr)

    return cb


def produce(bootstrap, topic, partitions, count, prefix, timeout_s=30.0):
    """Sends count records idempotently with acks=all; every delivery must
    succeed."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "skotch-mock-conformance-producer",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": int(timeout_s * 1000),
            "error_cb": errors_cb("producer"),
        }
    )
    reports = [None] * count

    def delivered(i):
        def cb(err, msg):
            reports[i] = (err, msg)

        return cb

    for i in range(count):
        while True:
            try:
                producer.produce(
                    topic,
                    key=f"k-{i}".encode(),
                    value=f"{prefix}{i}".encode(),
                    partition=i % partitions,
                    on_delivery=delivered(i),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout_s)
    if left:
        raise Failure(f"{left} of {count} records not delivered after {timeout_s} s")
    for i, report in enumerate(reports):
        if report is None:
            raise Failure(f"record {i}: no delivery report")
        err, msg = report
        if err is not None:
            raise Failure(f"record {i}: delivery failed: {err}")
        out(f"sent {msg.partition()} {msg.offset()} {prefix}{i}")


def consumer_config(bootstrap, client_id, group_id):
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "error_cb": errors_cb(client_id),
    }


def consume(bootstrap, topic, count, timeout_ms):
    """Reads every partition from the beginning, without joining a group,
    until count records came."""
    # The Python binding insists on a group id even though assign() never
    # joins the group; nothing is committed to it.
    consumer = Consumer(
        consumer_config(bootstrap, "skotch-mock-conformance-consumer", "skotch-mock-unused")
    )
    deadline = time.monotonic() + timeout_ms / 1000
    got = 0
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_ms / 1000)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise Failure(f"topic {topic} has no partitions: {info.error if info else 'missing'}")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(info.partitions)])
        while got < count:
            if time.monotonic() > deadline:
                raise Failure(f"consume: {got} of {count} records after {timeout_ms} ms")
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise Failure(f"consume error: {msg.error()}")
            out(f"rec {msg.partition()} {msg.offset()} {msg.value().decode()}")
            got += 1
    finally:
        consumer.close()


def numbers(partitions):
    return ",".join(str(p) for p in sorted(partitions))


class Member:
    """One group member: its consumer and the partitions it owns."""

    def __init__(self, name, config, topic):
        self.name = name
        self.owned = set()
        self.consumer = Consumer(config)
        self.consumer.subscribe(
            [topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost
        )

    def on_assign(self, consumer, partitions):
        # confluent-kafka assigns (or, for incremental protocols, adds)
        # them after this returns.
        self.owned.update(tp.partition for tp in partitions)
        out(f"assigned {self.name} {numbers(self.owned)}")

    def on_revoke(self, consumer, partitions):
        # Commit what was read before another member takes the partitions
        # over: no record read twice.
        if partitions:
            self.commit()
        self.owned.difference_update(tp.partition for tp in partitions)

    def on_lost(self, consumer, partitions):
        self.owned.difference_update(tp.partition for tp in partitions)
        out(f"lost {self.name} {numbers(tp.partition for tp in partitions)}")

    def commit(self):
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as e:
            # Nothing read since the last commit: nothing to commit.
            if e.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def poll(self):
        """One poll; the record read, if any."""
        msg = self.consumer.poll(0.05)
        if msg is None:
            return None
        if msg.error() is not None:
            if msg.error().code() == KafkaError._PARTITION_EOF:
                return None
            raise Failure(f"{self.name}: consume error: {msg.error()}")
        out(f"rec {self.name} {msg.partition()} {msg.offset()} {msg.value().decode()}")
        return msg


def group(bootstrap, topic, partitions, group_id, protocol, count, timeout_ms):
    deadline = time.monotonic() + timeout_ms / 1000
    members = []
    for name in ("m1", "m2"):
        config = consumer_config(bootstrap, f"skotch-mock-conformance-{name}", group_id)
        config["group.protocol"] = protocol
        if protocol == "classic":
            # Short, so a member that goes wrong is noticed within the
            # test's time (the consumer protocol's are the broker's).
            config["session.timeout.ms"] = 10000
            config["heartbeat.interval.ms"] = 1000
        members.append(Member(name, config, topic))
    try:
        # Produce only once both members own partitions and together all of
        # them, so that both read some and no rebalance moves records
        # between them while they read.
        while True:
            m1, m2 = members[0].owned, members[1].owned
            if m1 and m2 and len(m1 | m2) == partitions and len(m1) + len(m2) == partitions:
                break
            if time.monotonic() > deadline:
                raise Failure(
                    f"no stable group of two members after {timeout_ms} ms"
                    f" (m1 owns {numbers(m1)}, m2 owns {numbers(m2)})"
                )
            for m in members:
                m.poll()
        out(f"stable m1={numbers(members[0].owned)} m2={numbers(members[1].owned)}")
        produce(bootstrap, topic, partitions, count, "g-")
        got = 0
        while got < count:
            if time.monotonic() > deadline:
                raise Failure(f"the members read {got} of {count} records after {timeout_ms} ms")
            for m in members:
                if m.poll() is not None:
                    got += 1
        for m in members:
            m.commit()
    finally:
        for m in members:
            m.consumer.close()
    # What the group committed, as a new member would start from it.
    config = consumer_config(bootstrap, "skotch-mock-conformance-checker", group_id)
    config["group.protocol"] = protocol
    checker = Consumer(config)
    try:
        committed = checker.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        for tp in sorted(committed, key=lambda tp: tp.partition):
            if tp.error is not None:
                raise Failure(f"committed offset of partition {tp.partition}: {tp.error}")
            out(f"committed {tp.partition} {tp.offset}")
    finally:
        checker.close()


def main(argv):
    announce("rdkafka_mock_conformance")
    try:
        if len(argv) == 5 and argv[0] == "produce":
            produce(argv[1], argv[2], int(argv[3]), int(argv[4]), "v-")
        elif len(argv) == 5 and argv[0] == "consume":
            consume(argv[1], argv[2], int(argv[3]), int(argv[4]))
        elif len(argv) == 8 and argv[0] == "group" and argv[5] in ("classic", "consumer"):
            group(argv[1], argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]), int(argv[7]))
        else:
            print(USAGE, file=sys.stderr)
            sys.exit(2)
    except ValueError:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    except (Failure, KafkaException) as e:
        print(f"rdkafka_mock_conformance: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
