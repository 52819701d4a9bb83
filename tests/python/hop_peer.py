"""hop-client's own API as the peer of skotch's stream layer
(tests/hop_interop.rs): writes messages of every model with hop's
Producer, and reads a topic with hop's Consumer (hop.io.Stream.open),
without authentication (hop's `auth=False`; the URL has no `user@`), or
with --user as that SCRAM-SHA-512 user over SASL_PLAINTEXT (hop's Auth
with ssl=False; hop then writes a `_sender` header).

Usage:
    hop_peer.py write <kafka-url> <cases-json> [--user NAME:PASSWORD]
    hop_peer.py read <kafka-url> [--ignoretest true|false|both] [--user NAME:PASSWORD]

write: <cases-json> is a JSON list; each case is an object with
    "model": "voevent" | "circular" | "gcntextnotice"   with "file": a path
                                   (the model's load_file, as `hop publish -f`)
             "json"                with "content": any JSON (JSONBlob)
             "blob"                with "base64": the bytes (Blob)
             "avro"                with "content": a record, or a list of
                                   records with "single_record": false;
                                   optional "schema" (AvroBlob)
    "test": true to mark it as a test message (optional)
    "headers": [[key, text], ...] user headers (optional)
  Every case is written with Producer.write, in order, to the URL's only
  topic. Prints one JSON line per case, in case order, from its delivery
  report: {"index": i, "partition": p, "offset": o, "value": base64} (the
  value exactly as delivered; librdkafka's delivery reports carry no
  headers: `read` shows them).

read: reads the URL's topics from the earliest offset until the end of
  every partition (hop's start_at=EARLIEST, until_eos=True), with what
  Consumer.read(metadata=True) does (read_raw, then hop's Deserializer),
  once per ignoretest value asked for
  (default both: true, then false). Prints one JSON line per message:
  {"ignoretest": bool, "partition": p, "offset": o,
   "model": hop's class name (VOEvent, GCNCircular, GCNTextNotice,
            JSONBlob, Blob, AvroBlob, ExternalMessage),
   "content": the model as hop holds it (below),
   "bytes": base64 of bytes(message), what `hop subscribe` prints,
   "headers": [[key, base64 or null], ...] as hop's metadata has them,
   "value": base64 of the record value as received}
  content: VOEvent → asdict without _raw; GCNCircular → {"header", "body"};
  GCNTextNotice → {"raw": text, "fields"}; JSONBlob → {"content"};
  Blob → {"content": base64}; AvroBlob → {"content", "schema",
  "single_record"}. Bytes anywhere inside content are {"base64": ...}.
  A message hop's deserializer raises on has "model": null and "error"
  instead of content and bytes, plus "avro_records" when it reads as Avro
  with several records (AvroBlob.deserialize(single_record=False): hop's
  reader itself reads Avro with single_record=True and raises on those).

Exit status 1 (with a traceback on stderr) when hop raises, 2 on bad
usage. hop's logging goes to stderr.
"""

import base64
import dataclasses
import json
import logging
import sys

import hop
from hop import models
from hop.auth import Auth, SASLMethod
from hop.io import Deserializer, StartPosition, Stream

USAGE = (
    "usage: hop_peer.py write <kafka-url> <cases-json> [--user NAME:PASSWORD]\n"
    "       hop_peer.py read <kafka-url> [--ignoretest true|false|both] [--user NAME:PASSWORD]"
)


def b64(data):
    if data is None:
        return None
    return base64.b64encode(bytes(data)).decode("ascii")


def plain(value):
    """JSON-able form of what hop's models hold: bytes become
    {"base64": ...}, tuples lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": b64(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def load(case):
    model = case["model"]
    if model == "voevent":
        return models.VOEvent.load_file(case["file"])
    if model == "circular":
        return models.GCNCircular.load_file(case["file"])
    if model == "gcntextnotice":
        return models.GCNTextNotice.load_file(case["file"])
    if model == "json":
        return models.JSONBlob(content=case["content"])
    if model == "blob":
        return models.Blob(content=base64.b64decode(case["base64"]))
    if model == "external":
        return models.ExternalMessage(url=case["url"])
    if model == "avro":
        return models.AvroBlob(
            content=case["content"],
            schema=case.get("schema"),
            single_record=case.get("single_record", True),
        )
    raise SystemExit(f"hop_peer.py: unknown model {model!r}")


def write(url, cases, auth):
    messages = [load(case) for case in cases]
    reports = [None] * len(messages)

    def delivered(index):
        def callback(err, msg):
            if err is not None:
                raise RuntimeError(f"case {index} not delivered: {err}")
            reports[index] = {
                "index": index,
                "partition": msg.partition(),
                "offset": msg.offset(),
                "value": b64(msg.value()),
            }

        return callback

    with Stream(auth=auth).open(url, "w") as s:
        for i, (case, message) in enumerate(zip(cases, messages)):
            headers = [(k, v.encode("utf-8")) for k, v in case.get("headers", [])]
            s.write(
                message,
                headers=headers or None,
                test=case.get("test", False),
                delivery_callback=delivered(i),
            )
    missing = [i for i, r in enumerate(reports) if r is None]
    if missing:
        raise RuntimeError(f"no delivery report for cases {missing}")
    for r in reports:
        print(json.dumps(r))


def content(message):
    if isinstance(message, models.VOEvent):
        return dataclasses.asdict(message, dict_factory=models.VOEvent.dict_factory)
    if isinstance(message, models.GCNTextNotice):
        return {"raw": message.raw.decode("utf-8"), "fields": message.fields}
    if isinstance(message, models.AvroBlob):
        return {
            "content": plain(message.content),
            "schema": plain(message.schema),
            "single_record": message.single_record,
        }
    if dataclasses.is_dataclass(message):
        return plain(dataclasses.asdict(message))
    return plain(message)


def read(url, ignoretest, auth):
    stream = Stream(auth=auth, start_at=StartPosition.EARLIEST, until_eos=True)
    with stream.open(url, "r", ignoretest=ignoretest) as s:
        # Consumer.read is read_raw (the same test filtering) followed by
        # Deserializer.deserialize of each record; calling the two here
        # lets a message hop cannot deserialize be reported instead of
        # ending the loop.
        for _, metadata in s.read_raw(metadata=True):
            out = {
                "ignoretest": ignoretest,
                "partition": metadata.partition,
                "offset": metadata.offset,
                "headers": [[k, b64(v)] for k, v in (metadata.headers or [])],
                "value": b64(metadata._raw.value()),
            }
            try:
                message = Deserializer.deserialize(metadata._raw)
            except Exception as e:  # noqa: BLE001 - reported to the test
                out["model"] = None
                out["error"] = f"{type(e).__name__}: {e}"
                # AvroBlob(single_record=False) writes several records, which
                # hop's reader refuses (it reads Avro with single_record=True):
                # the records as hop reads them when asked for a list.
                try:
                    records = models.AvroBlob.deserialize(metadata._raw.value(), single_record=False)
                    out["avro_records"] = plain(records.content)
                except Exception:  # noqa: BLE001 - not Avro either
                    pass
            else:
                out["model"] = type(message).__name__
                out["content"] = content(message)
                out["bytes"] = b64(bytes(message))
            print(json.dumps(out), flush=True)


def main(argv):
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    print(f"hop_peer: hop-client {hop.__version__}", file=sys.stderr)

    def usage():
        print(USAGE, file=sys.stderr)
        sys.exit(2)

    positional, options = [], {"--ignoretest": "both", "--user": None}
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in options:
            if not rest:
                usage()
            options[arg] = rest.pop(0)
        else:
            positional.append(arg)
    auth = False
    if options["--user"] is not None:
        if ":" not in options["--user"]:
            usage()
        user, password = options["--user"].split(":", 1)
        auth = Auth(user, password, ssl=False, method=SASLMethod.SCRAM_SHA_512)
    if len(positional) == 3 and positional[0] == "write":
        write(positional[1], json.loads(positional[2]), auth)
    elif len(positional) == 2 and positional[0] == "read":
        which = {"true": [True], "false": [False], "both": [True, False]}.get(options["--ignoretest"])
        if which is None:
            usage()
        for ignoretest in which:
            read(positional[1], ignoretest, auth)
    else:
        usage()


if __name__ == "__main__":
    main(sys.argv[1:])
