"""Shared bits of the librdkafka interop programs: argument parsing, JSON
output helpers and the client version banner. Mirrors tests/java/Json.java
so the Rust tests read both peers' output with the same code."""

import base64
import sys

import confluent_kafka

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def announce(program):
    """librdkafka and confluent-kafka versions to stderr (test logs say
    which implementation answered)."""
    print(
        f"{program}: librdkafka {confluent_kafka.libversion()[0]}, "
        f"confluent-kafka {confluent_kafka.__version__}",
        file=sys.stderr,
    )


def b64(data):
    """Bytes as standard padded base64, or None (JSON null) for None."""
    if data is None:
        return None
    return base64.b64encode(data).decode("ascii")


def utf8(text):
    """A string's UTF-8 bytes, or None."""
    return None if text is None else text.encode("utf-8")


class Args:
    """A tiny parser for `prog <positional>... [--flag] [--opt value]...`,
    failing with the program's usage line and exit code 2 like the Java
    programs do (argparse would also exit 2, but its messages and prefix
    matching of options are not what the Java programs accept)."""

    def __init__(self, argv, usage, positional, flags=(), options=()):
        self.usage = usage
        if len(argv) < len(positional):
            self.fail()
        self.values = dict(zip(positional, argv))
        rest = argv[len(positional):]
        i = 0
        while i < len(rest):
            arg = rest[i]
            if arg in flags:
                self.values[arg] = True
            elif arg in options:
                i += 1
                if i >= len(rest):
                    self.fail()
                self.values[arg] = rest[i]
            else:
                self.fail()
            i += 1

    def fail(self):
        print(self.usage, file=sys.stderr)
        sys.exit(2)

    def get(self, name, default=None):
        return self.values.get(name, default)

    def int(self, name, default=None):
        value = self.values.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            self.fail()
