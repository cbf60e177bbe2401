import io
import itertools
import time

import pytest

from msgsuite import cli
from msgsuite.backoff import Backoff
from msgsuite.client import Receipt, Rejected, Unreachable


class Stdin(io.StringIO):
    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def plan(argv: list[str], stdin: Stdin | None = None) -> cli.Plan:
    return cli.parse_plan("test-client", argv, stdin or Stdin(tty=True))


def test_arguments_are_the_messages_in_order() -> None:
    p = plan(["hola", "adiós"])
    assert list(p.messages) == ["hola", "adiós"] and p.total == 2 and p.fixed_key is None


def test_stdin_lines_are_messages_without_their_newline() -> None:
    p = plan([], Stdin("a\nb c\n  d  \nlast"))
    assert list(p.messages) == ["a", "b c", "  d  ", "last"] and p.total is None


def test_count_generates_that_many_distinct_messages_with_progress() -> None:
    p = plan(["--count", "5", "--concurrency", "3"])
    messages = list(p.messages)
    assert len(messages) == len(set(messages)) == 5
    assert p.concurrency == 3 and p.progress


def test_demo_sends_its_text_with_a_fixed_key_when_stdin_is_empty() -> None:
    p = plan(["--demo", "Hola"], Stdin(""))
    assert list(p.messages) == ["Hola"] and p.fixed_key == "demo-test-client"


def test_demo_yields_to_piped_lines() -> None:
    p = plan(["--demo", "Hola"], Stdin("a\nb\n"))
    assert list(p.messages) == ["a", "b"] and p.fixed_key is None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--count", "0"],
        ["--count", "x"],
        ["--count", "3", "hola"],
        ["--concurrency", "-1", "a"],
        ["--idempotency-key", "k", "a", "b"],
        ["--idempotency-key", "k", "--count", "2"],
    ],
)
def test_bad_command_lines_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        plan(argv)
    assert exit_info.value.code == cli.EXIT_USAGE


class FlakySender:
    """Fails the first `failures` sends as unreachable, then stores."""

    def __init__(self, failures: int, reject: set[str] = frozenset()) -> None:
        self.failures = failures
        self.reject = reject
        self.keys: list[str] = []
        self.ids = itertools.count(1)
        self.batches: list[int] = []

    def send(self, text: str, key: str) -> Receipt:
        self.keys.append(key)
        if text in self.reject:
            raise Rejected("message must not be blank")
        if self.failures > 0:
            self.failures -= 1
            raise Unreachable("down")
        return Receipt(id=next(self.ids))

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        self.batches.append(len(texts))
        return [self.send(text, key) for text, key in zip(texts, keys, strict=True)]

    def close(self) -> None:
        pass


NO_WAIT = Backoff(first=0.0, cap=0.0)


def test_deliver_retries_with_the_same_key_until_stored() -> None:
    sender = FlakySender(failures=3)
    assert cli.deliver(sender, ["m"], ["key-1"], retries=5, backoff=NO_WAIT)[0].id == 1
    assert sender.keys == ["key-1"] * 4


def test_deliver_gives_up_after_the_retries() -> None:
    sender = FlakySender(failures=10)
    with pytest.raises(Unreachable):
        cli.deliver(sender, ["m"], ["k"], retries=2, backoff=NO_WAIT)
    assert len(sender.keys) == 3


def test_run_prints_one_line_per_message_and_fails_when_one_is_rejected() -> None:
    sender = FlakySender(failures=0, reject={"  "})
    out, err = io.StringIO(), io.StringIO()
    code = cli.run("test-client", lambda: lambda: sender, ["a", "  ", "b"], Stdin(tty=True), out, err)
    assert code == cli.EXIT_FAILED
    lines = out.getvalue().splitlines()
    assert [line.split(" key=")[0] for line in lines] == ["stored id=1 total=1", "stored id=2 total=2"]
    assert [line.split(" key=")[1] for line in lines] == [sender.keys[0], sender.keys[2]]
    assert f"message 2 (key={sender.keys[1]}) rejected: message must not be blank" in err.getvalue()
    assert len(set(sender.keys)) == 3 and sender.keys[1] not in out.getvalue()


def test_run_exits_zero_when_everything_was_stored() -> None:
    sender = FlakySender(failures=0)
    out = io.StringIO()
    assert (
        cli.run(
            "t", lambda: lambda: sender, ["--count", "20", "--concurrency", "4"], Stdin(tty=True), out, io.StringIO()
        )
        == cli.EXIT_OK
    )
    assert len(out.getvalue().splitlines()) == 20


def test_receipt_lines() -> None:
    assert Receipt(id=4).line("k1") == "stored id=4 total=4 key=k1"
    assert "repeated" in Receipt(id=4, repeated=True).line("k1")
    assert Receipt().line("k2").startswith("queued key=k2 ")


def test_rate_paces_the_load() -> None:
    sender = FlakySender(failures=0)
    started = time.monotonic()
    cli.run(
        "t", lambda: lambda: sender, ["--count", "6", "--rate", "20"], Stdin(tty=True), io.StringIO(), io.StringIO()
    )
    # 6 messages at 20/s: the last may start only 0.25 s after the first.
    assert time.monotonic() - started >= 0.25


def test_backoff_stays_within_its_cap_and_count() -> None:
    delays = list(Backoff(first=0.1, cap=1.0).delays(10))
    assert len(delays) == 10 and all(0 < d <= 1.0 for d in delays)


def test_batch_mode_groups_messages_and_still_prints_one_line_each() -> None:
    sender = FlakySender(failures=0)
    out = io.StringIO()
    code = cli.run("t", lambda: lambda: sender, ["--count", "7", "--batch", "3"], Stdin(tty=True), out, io.StringIO())
    assert code == cli.EXIT_OK
    assert sorted(sender.batches) == [3, 3] and len(sender.keys) == 7  # the last single one goes alone
    assert len(out.getvalue().splitlines()) == 7 and len(set(sender.keys)) == 7


def test_a_refused_batch_counts_every_message_in_it_as_failed() -> None:
    sender = FlakySender(failures=0, reject={"  "})
    err = io.StringIO()
    code = cli.run("t", lambda: lambda: sender, ["--batch", "2", "a", "  ", "b"], Stdin(tty=True), io.StringIO(), err)
    assert code == cli.EXIT_FAILED
    assert "batch of messages 1-2 rejected" in err.getvalue() and "2 of 3 messages failed" in err.getvalue()
