"""The docs are tests: every command and Python snippet of README.md and docs/*.md runs.

What runs
    Fenced blocks of README.md and docs/*.md. A ```python block is one snippet. A block fenced
    with no language, ``bash``, ``sh``, ``shell`` or ``console`` is shell: if any of its lines
    starts with a ``$ `` prompt, only those lines are commands (the rest is output), otherwise
    every line is. A command is a line (``\\``-continued lines joined, ``# comments`` dropped)
    whose ``&&``/``;`` parts begin, after optional ``VAR=value`` assignments and ``nice -n N``,
    with ``rnnlab`` or ``python``; ``pip install`` parts, ``python -m pytest`` (the suite this
    test is part of) and other programs (``ruff``, ``apt-get``) are never run. Synopses and
    output go in ```text blocks, which do not run.

Markers (the HTML comment on the line before the fence)
    ``<!-- docs-test: skip REASON -->`` skips the block with REASON;
    ``<!-- docs-test: expect-fail -->``: each command must exit non-zero, and when the doc shows
    ``rnnlab: error: MESSAGE`` below it, MESSAGE must be in its stderr.

Rewrites (a tiny budget, the same meaning)
    ``--max-minutes``/``--budget-minutes`` become 0.1; ``--max-steps`` is capped at 2 (at 4 with
    ``--resume``, which continues a 2-step run), and ``rnnlab train``/``rnnlab bench TASK`` get
    ``--max-steps 2`` when they have none, and ``rnnlab bench TASK`` also ``--quick`` (a tiny model;
    the command's own flags still apply). ``runs/<timestamp>`` is the newest folder under
    ``runs/``, made by an earlier ``rnnlab train`` of the same doc. ``PYTHONPATH=src`` is dropped
    (the code under test is already on the path); ``benchmarks/X`` (``python benchmarks/X.py``, a
    sweep or config file) is the repository's file when the doc's folder has none.

Where it runs
    The blocks of one doc run in order in one temporary folder, so a later block uses the files of
    an earlier one (``rnnlab train --out runs/x`` then ``rnnlab sample --run runs/x``); running a
    single block first runs the doc's earlier blocks. The folder is ``TMP/<doc>/rnnlab`` beside
    ``TMP/<doc>/shared/data``, a link to the shared data, so the docs' ``../shared/data`` resolves
    as it does from the repository root; ``RNNLAB_DATA_DIR`` points there too. Without the shared
    data every block is skipped.

Opt-in
    All blocks together take about 15 CPU minutes (one thread), more than the rest of the suite,
    so they run only with ``RNNLAB_DOCS_TEST=1`` (``-k docs/export.md`` runs one doc).

Skips
    A command that ends in the one-line error of a missing optional extra (``pip install``, or
    ``No module named X`` for an X that is not installed) or of a dataset that is not on disk and
    cannot be downloaded is skipped with that line as the reason.

How (fast and isolated)
    Importing torch takes seconds, and the docs hold about a hundred commands. A helper process
    (this file run as a script) imports rnnlab once and forks one child per command: each command
    and snippet is a separate process with its own folder, environment, output and exit code, as
    ``rnnlab ...`` would be, without paying the import each time. Torch uses one thread in it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
FILE_FENCES = {"yaml", "toml", "json"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|expect-fail)\b\s*(.*?)\s*-->")
COMMAND_LINE = re.compile(r"^([A-Z_][A-Z0-9_]*=\S*\s+)*(nice -n \d+\s+)?(rnnlab|python|pip)\s")
FENCE = re.compile(r"^(\s*)```\s*([\w-]*)")
MINUTES = "0.1"
MAX_STEPS, RESUME_MAX_STEPS = 2, 4
TIMEOUT = 300.0
SKIP_LINE = re.compile(
    r"pip install|No module named '([\w.]+)'|could not download|is not available locally"
)


@dataclass
class Command:
    """One command: its kind (``rnnlab``, ``module``, ``script``), arguments and environment."""

    kind: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    expected_error: str = ""


@dataclass
class Block:
    """One fenced block: where it is, what it runs, and its marker."""

    doc: str
    line: int
    commands: list[Command] = field(default_factory=list)
    snippet: str = ""
    file: str = ""
    """The name of the file the block is (its body is the content), or ``""``."""
    skip: str = ""
    expect_fail: bool = False

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _parts(tokens: list[str]) -> list[list[str]]:
    parts, current = [], []
    for token in tokens:
        if token in ("&&", ";"):
            parts.append(current)
            current = []
        else:
            current.append(token)
    return [*parts, current]


def parse_command(line: str) -> list[Command]:
    """The rnnlab/python commands of one shell line (pip and other programs left out)."""
    commands = []
    for part in _parts(shlex.split(line, comments=True)):
        env = {}
        while part and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", part[0]):
            name, _, value = part.pop(0).partition("=")
            if name != "PYTHONPATH":
                env[name] = value
        if part[:2] == ["nice", "-n"]:
            part = part[3:]
        if not part or part[0] not in ("rnnlab", "python"):
            continue
        if {"|", ">", "<", ">>"} & set(part):
            raise ValueError(f"pipes and redirections are not run: {line!r}")
        if part[1:3] == ["-m", "pytest"]:
            continue  # the test suite, which this test is part of
        if part[0] == "rnnlab":
            commands.append(Command("rnnlab", part[1:], env))
        elif part[1:2] == ["-m"]:
            commands.append(Command("module", part[2:], env))
        else:
            commands.append(Command("script", part[1:], env))
    return commands


def _shell_commands(body: list[str]) -> list[Command]:
    prompted = any(line.startswith("$ ") for line in body)
    commands: list[Command] = []
    index = 0
    while index < len(body):
        line = body[index]
        index += 1
        if prompted and not line.startswith("$ "):
            if line.startswith("rnnlab: error: ") and commands:
                commands[-1].expected_error = line.removeprefix("rnnlab: error: ").strip()
            continue
        line = line.removeprefix("$ ")
        while line.endswith("\\") and index < len(body):
            line = line[:-1] + " " + body[index].strip()
            index += 1
        if COMMAND_LINE.match(line):
            commands += parse_command(line)
    return commands


def parse_doc(path: Path) -> list[Block]:
    """The runnable blocks of one Markdown file."""
    lines = path.read_text().split("\n")
    name = str(path.relative_to(ROOT))
    blocks, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start, language = index, fence.group(2)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("```"))
        indent = len(fence.group(1))
        body = [line[indent:] for line in lines[start + 1 : end]]
        index = end + 1
        block = Block(name, start + 1)
        if language == "python":
            block.snippet = "\n".join(body) + "\n"
        elif language in FILE_FENCES and body and re.fullmatch(r"# [\w./-]+", body[0]):
            block.file = body[0][2:]
            block.snippet = "\n".join(body[1:]) + "\n"
        elif language in SHELL_FENCES:
            block.commands = _shell_commands(body)
            if not block.commands:
                continue
        else:
            continue
        marker = MARKER.search(lines[start - 1]) if start else None
        if marker and marker.group(1) == "skip":
            block.skip = marker.group(2) or "marked skip"
        block.expect_fail = bool(marker and marker.group(1) == "expect-fail")
        blocks.append(block)
    return blocks


def _option(argv: list[str], flag: str) -> int | None:
    return argv.index(flag) if flag in argv else None


def shrink(command: Command, cwd: Path) -> list[str]:
    """The arguments to run: a tiny budget and the placeholders resolved (module docstring)."""
    argv = list(command.argv)
    for flag in ("--max-minutes", "--budget-minutes"):
        at = _option(argv, flag)
        if at is not None:
            argv[at + 1] = MINUTES
    cap = RESUME_MAX_STEPS if "--resume" in argv else MAX_STEPS
    at = _option(argv, "--max-steps")
    if at is not None:
        argv[at + 1] = str(min(int(argv[at + 1]), cap))
    elif command.kind == "rnnlab" and argv[:1] == ["train"]:
        argv += ["--max-steps", str(cap)]
    elif (
        command.kind == "rnnlab"
        and argv[:1] == ["bench"]
        and not {"--list", "--from-run"} & set(argv)
    ):
        argv += ["--max-steps", str(cap)] + ([] if "--quick" in argv else ["--quick"])
    runs = sorted((cwd / "runs").glob("*/"), key=lambda p: p.stat().st_mtime)
    if runs:
        argv = [arg.replace("runs/<timestamp>", f"runs/{runs[-1].name}") for arg in argv]
    if command.kind == "script" and not (cwd / argv[0]).exists():
        argv[0] = str(ROOT / argv[0])
    return [_repository_file(arg, cwd) for arg in argv]


def _repository_file(arg: str, cwd: Path) -> str:
    """``benchmarks/...`` (a script or a config file the docs run from the repository's root):
    the repository's file when the doc's folder has none."""
    if arg.startswith("benchmarks/") and not (cwd / arg).exists() and (ROOT / arg).exists():
        return str(ROOT / arg)
    return arg


# ---- the helper process that forks one child per command -------------------------------------


def _child(request: dict) -> int:
    """Run one request in this (forked) process; returns its exit code."""
    import runpy
    import traceback

    os.chdir(request["cwd"])
    os.environ.update(request["env"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    kind, argv = request["kind"], request["argv"]
    try:
        if kind == "rnnlab":
            from rnnlab.cli.main import main

            sys.argv = ["rnnlab", *argv]
            return main(argv)
        if kind == "snippet":
            sys.argv = ["-c"]
            exec(compile(request["code"], request["name"], "exec"), {"__name__": "__main__"})
            return 0
        sys.argv = list(argv)
        if kind == "module":
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, str(Path(argv[0]).parent))
            runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as done:
        code = done.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - a snippet's error is its result
        traceback.print_exc()
        return 1


def _wait(pid: int, timeout: float) -> tuple[int, float]:
    """The child's exit code (-9: killed at the timeout) and CPU seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            _, _, usage = os.wait4(pid, 0)
            return -9, usage.ru_utime + usage.ru_stime
        time.sleep(0.02)


def serve() -> None:
    """Read one JSON request per line on stdin, fork, answer ``{"code": N, "cpu": S}``."""
    import rnnlab.cli.main

    rnnlab.cli.main.build_parser()  # imports every subcommand, task and cell once
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if 0 <= code < 256 else 1)
        code, cpu = _wait(pid, request["timeout"])
        print(json.dumps({"code": code, "cpu": cpu}), flush=True)


if __name__ == "__main__":
    serve()


# ---- the tests ----------------------------------------------------------------------------------

import pytest  # noqa: E402 - not needed by the helper process above

from conftest import shared_data_dir  # noqa: E402

BLOCKS = [block for doc in DOCS for block in parse_doc(doc)]


class Runner:
    """The helper process, each doc's folder, the blocks already run, and the counts."""

    def __init__(self, base: Path, data: Path) -> None:
        self.base, self.data = base, data
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RNNLAB_DATA_DIR": str(data)}
        self.process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=base,
        )
        self.done: dict[str, int] = {}
        self.counts = {
            "commands run": 0,
            "snippets run": 0,
            "files written": 0,
            "blocks skipped": 0,
        }
        self.skipped: list[str] = []
        self.not_made: dict[tuple[str, str], str] = {}  # (doc, --out of a skipped command): why
        self.serial = 0
        self.cpu = 0.0
        self.started = time.monotonic()

    def folder(self, doc: str) -> Path:
        root = self.base / doc.replace("/", "_")
        cwd = root / "rnnlab"
        if not cwd.exists():
            (root / "shared").mkdir(parents=True)
            (root / "shared" / "data").symlink_to(self.data)
            cwd.mkdir()
        return cwd

    def run(self, kind: str, argv: list[str], cwd: Path, env: dict, code: str = "") -> tuple:
        """Run one request; returns (exit code, stdout, stderr)."""
        self.serial += 1
        out, err = (self.base / f"{self.serial}.{name}" for name in ("out", "err"))
        request = {
            "kind": kind,
            "argv": argv,
            "code": code,
            "name": " ".join(argv),
            "cwd": str(cwd),
            "env": env,
            "stdout": str(out),
            "stderr": str(err),
            "timeout": TIMEOUT,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        self.cpu += answer["cpu"]
        return answer["code"], out.read_text(errors="replace"), err.read_text(errors="replace")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def runner(tmp_path_factory, request):
    if not os.environ.get("RNNLAB_DOCS_TEST"):
        pytest.skip("the docs take about 15 CPU minutes: RNNLAB_DOCS_TEST=1 runs them")
    data = shared_data_dir()
    if data is None:
        pytest.skip("no shared data directory ../shared/data (or $RNNLAB_DATA_DIR)")
    helper = Runner(tmp_path_factory.mktemp("docs"), data)
    yield helper
    helper.close()
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        counts = ", ".join(f"{value} {key}" for key, value in helper.counts.items())
        minutes = (time.monotonic() - helper.started) / 60
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line(
                f"\ndocs: {counts}; {helper.cpu / 60:.1f} CPU minutes in {minutes:.1f} minutes"
            )
            for line in helper.skipped:
                reporter.write_line(f"  skipped {line}")


def _skip_reason(stderr: str) -> str:
    """The missing extra or dataset named by a failed command's last line, or ``""``."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    match = SKIP_LINE.search(last)
    if not match:
        return ""
    if match.group(1):
        import importlib.util

        top = match.group(1).split(".")[0]
        if top == "rnnlab" or importlib.util.find_spec(top) is not None:
            return ""
    return last


def _run_block(runner: Runner, block: Block) -> str:
    """Run ``block``; returns a skip reason or ``""``; fails the test on a wrong exit code."""
    cwd = runner.folder(block.doc)
    if block.file:
        (cwd / block.file).parent.mkdir(parents=True, exist_ok=True)
        (cwd / block.file).write_text(block.snippet)
        runner.counts["files written"] += 1
        return ""
    if block.snippet:
        code, out, err = runner.run("snippet", [block.id], cwd, {}, block.snippet)
        reason = _skip_reason(err) if code else ""
        if not reason:
            assert code == 0, f"{block.id}: the snippet raised\n{out}{err}"
            runner.counts["snippets run"] += 1
        return reason
    for command in block.commands:
        argv = shrink(command, cwd)
        code, out, err = runner.run(command.kind, argv, cwd, command.env)
        shown = f"{command.kind} {shlex.join(argv)} (exit {code})\n{out[-3000:]}{err[-3000:]}"
        reason = (_skip_reason(err) or _needs_skipped_run(runner, block, argv)) if code else ""
        if reason and not block.expect_fail:
            if "--out" in argv[:-1]:
                runner.not_made[block.doc, argv[argv.index("--out") + 1]] = reason
            return reason
        if block.expect_fail:
            assert code not in (0, -9), f"{block.id}: expected to fail: {shown}"
            assert command.expected_error in err, f"{block.id}: another error: {shown}"
        else:
            assert code == 0, f"{block.id}: {shown}"
        runner.counts["commands run"] += 1
    return ""


def _needs_skipped_run(runner: Runner, block: Block, argv: list[str]) -> str:
    """Why a command reading ``--run DIR`` is skipped: DIR is the ``--out`` of a skipped one."""
    if "--run" not in argv[:-1]:
        return ""
    why = runner.not_made.get((block.doc, argv[argv.index("--run") + 1]), "")
    return f"its run was not made ({why})" if why else ""


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_doc_block(runner, block):
    if block.skip:
        runner.counts["blocks skipped"] += 1
        runner.skipped.append(f"{block.id}: {block.skip}")
        pytest.skip(block.skip)
    start = runner.done.get(block.doc, 0)
    for earlier in BLOCKS:  # a block alone still sees the files of the doc's earlier blocks
        if earlier.doc == block.doc and start <= earlier.line < block.line and not earlier.skip:
            try:
                _run_block(runner, earlier)
            except AssertionError:
                pass
    runner.done[block.doc] = block.line + 1
    reason = _run_block(runner, block)
    if reason:
        runner.counts["blocks skipped"] += 1
        runner.skipped.append(f"{block.id}: {reason}")
        pytest.skip(reason)


def test_docs_have_runnable_blocks():
    """The parser finds the docs' commands and snippets (a broken parser would run nothing)."""
    commands = sum(len(block.commands) for block in BLOCKS)
    snippets = sum(bool(block.snippet) for block in BLOCKS)
    assert commands > 50 and snippets > 10


def test_shrink_gives_a_tiny_budget(tmp_path):
    (tmp_path / "runs" / "2026-01-01").mkdir(parents=True)
    train = parse_command("OMP_NUM_THREADS=1 rnnlab train --max-minutes 38 --out runs/x")[0]
    assert train.env == {"OMP_NUM_THREADS": "1"}
    assert shrink(train, tmp_path) == [
        "train", "--max-minutes", "0.1", "--out", "runs/x", "--max-steps", "2"
    ]  # fmt: skip
    bench = parse_command("rnnlab bench adding --budget-minutes 15")[0]
    assert shrink(bench, tmp_path)[2:] == ["--budget-minutes", "0.1", "--max-steps", "2", "--quick"]
    resume = parse_command("rnnlab train --resume runs/q --max-steps 200  # more")[0]
    assert shrink(resume, tmp_path)[-1] == "4"
    sample = parse_command("pip install -e . && rnnlab sample --run runs/<timestamp>")
    assert [shrink(c, tmp_path) for c in sample] == [["sample", "--run", "runs/2026-01-01"]]
    script = parse_command("PYTHONPATH=src python benchmarks/speed_scan.py --steps 1")[0]
    assert script.env == {} and shrink(script, tmp_path)[0] == str(
        ROOT / "benchmarks/speed_scan.py"
    )
    assert parse_command("ruff check . && ruff format --check .") == []
