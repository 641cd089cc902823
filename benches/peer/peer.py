#!/usr/bin/env python3
"""Paired benchmark of xmatch against the DuckDB job a data engineer would write (issue 13).

    python3 benches/peer/peer.py --xmatch target/release/xmatch --participants 1000000

Generates one synthetic state with the xmatch binary (not timed), then, for each round and
in alternating order, runs on the same incoming Parquet files:

  * xmatch first run:   `xmatch -w COPY run nightly-crossmatch` on a fresh copy of the
                        pristine workspace (empty registry);
  * xmatch steady run:  the same command again on that copy (steady state);
  * peer:               `job.sql` in DuckDB (this script's `job` subcommand in a Python
                        that has duckdb), writing to a fresh output directory.

Each run is a child process; its wall time and peak RSS (`ru_maxrss` from `os.wait4`) are
measured here. `--also LABEL=BINARY` (repeatable) adds another build's shipped pipeline
to every round, in the same alternation (an A/B of two builds: kinds `xmatch[LABEL] first`
and `... steady`, with their paired ratios to the peer and to the main binary's runs).
Prints a table (samples, medians, peak memory, the ratios xmatch/peer) and
the exact commands; `--json FILE` writes the same as JSON. See benches/peer/README.md.

Standard library only. DuckDB is installed on first use into a venv under
~/.cache/xmatch-peer-venv (`pip install duckdb`) unless this Python already has it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB_SQL = HERE / "job.sql"
VENV = Path.home() / ".cache" / "xmatch-peer-venv"
SOURCES = ["participants", "public_assistance", "ui_claims", "taa", "ui_wages"]
SHIPPED_PIPELINE = "nightly-crossmatch"
EXACT_PIPELINE = "nightly-exact"


def log(msg: str) -> None:
    print(f"[peer] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# DuckDB: where it comes from
# ---------------------------------------------------------------------------------------

def python_with_duckdb(spec: str) -> str:
    """A Python interpreter that can `import duckdb`: this one if it can, else the venv's
    (created and filled with `pip install duckdb` the first time)."""
    if subprocess.run([sys.executable, "-c", "import duckdb"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        return sys.executable
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import duckdb"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        log(f"installing {spec} into {VENV}")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", spec], check=True)
    return str(py)


# ---------------------------------------------------------------------------------------
# The peer job (runs in the child process, in a Python that has duckdb)
# ---------------------------------------------------------------------------------------

def sql_literal_path(p: Path) -> str:
    return str(p).replace("'", "''")


def job_steps(sql: str) -> list[tuple[str, str]]:
    """Splits job.sql at its `-- step: NAME` lines."""
    steps: list[tuple[str, str]] = []
    name, lines = None, []
    for line in sql.splitlines():
        m = re.match(r"^-- step: (\w+)\s*$", line)
        if m:
            if name is not None:
                steps.append((name, "\n".join(lines)))
            name, lines = m.group(1), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        steps.append((name, "\n".join(lines)))
    return steps


def run_job(args: argparse.Namespace) -> int:
    import duckdb  # noqa: PLC0415 (only the child has it)

    t0 = time.perf_counter()
    key = Path(args.key).read_bytes()
    if len(key) != 32:
        print(f"{args.key}: {len(key)} bytes, not 32", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sql = (Path(args.sql).read_text()
           .replace("@INCOMING@", sql_literal_path(Path(args.incoming).resolve()))
           .replace("@OUT@", sql_literal_path(out.resolve()))
           .replace("SET threads = 2;", f"SET threads = {int(args.threads)};"))
    # No progress bar: stdout carries the job's JSON result.
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    # The key is a variable of this session only; it is never written into a SQL file.
    con.execute(f"SET VARIABLE peer_key = '{key.hex()}'")
    steps, results = [], {}
    for name, body in job_steps(sql):
        t = time.perf_counter()
        rel = con.execute(body)
        try:
            rows = rel.fetchall()
        except duckdb.InvalidInputError:  # a statement without a result
            rows = []
        steps.append([name, round(time.perf_counter() - t, 3)])
        results[name] = rows
    counts = {}
    for source, read, linked, persons, by_ssn, by_nd in results.get("summary", []):
        counts[source] = {"read": read, "linked": linked, "persons": persons,
                          "by_ssn": by_ssn, "by_name_dob": by_nd}
    if "ui_wages" in counts and results.get("link_write_ui_wages"):
        n = results["link_write_ui_wages"][0][0]
        counts["ui_wages"].update(linked=n, by_ssn=n, by_name_dob=0)
    settings = dict(con.execute(
        "SELECT name, value FROM duckdb_settings() "
        "WHERE name IN ('threads', 'memory_limit', 'preserve_insertion_order')").fetchall())
    print(json.dumps({
        "duckdb_version": duckdb.__version__,
        "settings": settings,
        "steps": steps,
        "counts": counts,
        "seconds_in_job": round(time.perf_counter() - t0, 3),
    }))
    return 0


# ---------------------------------------------------------------------------------------
# Measuring a child process
# ---------------------------------------------------------------------------------------

def measured(cmd: list[str], log_base: Path, env: dict | None = None) -> dict:
    """Runs `cmd` with stdout/stderr to `log_base`.out/.err; wall time, peak RSS and CPU
    time from wait4."""
    with open(f"{log_base}.out", "w") as out, open(f"{log_base}.err", "w") as err:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "command": shlex.join(cmd),
        "exit": proc.returncode,
        "seconds": round(wall, 3),
        "peak_rss_bytes": ru.ru_maxrss * 1024,  # Linux reports KiB
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
        "load_before": round(load, 2),
        "stdout": Path(f"{log_base}.out").read_text(errors="replace"),
        "log": f"{log_base}.out",
    }


def must_succeed(r: dict, what: str) -> None:
    if r["exit"] != 0:
        err = Path(r["log"][: -len(".out")] + ".err").read_text(errors="replace")[-3000:]
        raise SystemExit(f"peer.py: {what} failed (exit {r['exit']}): {r['command']}\n{err}")


# ---------------------------------------------------------------------------------------
# xmatch: the state, workspace copies, the run summary
# ---------------------------------------------------------------------------------------

def xmatch_env() -> dict:
    """The environment without any XMATCH_* variable: no other workspace or store
    (XMATCH_WORKSPACE, XMATCH_STORE_URL), no logging, no tuning override; the benchmark
    measures xmatch as it ships."""
    return {k: v for k, v in os.environ.items() if not k.startswith("XMATCH_")}


def state_is_there(pristine: Path, participants: int, seed: int, noise: str,
                   binary_sha256: str) -> bool:
    """The pristine workspace can be reused: made by this very binary (a newer one may
    migrate the store on its first open, or generate other files), with the same N, seed
    and noise, and never run in."""
    try:
        m = json.loads((pristine / "incoming" / "manifest.json").read_text())
        made_by = (pristine.parent / "pristine.binary").read_text().strip()
    except (OSError, ValueError):
        return False
    return (made_by == binary_sha256
            and m.get("participants") == participants and m.get("seed") == seed
            and m.get("noise", "default") == noise
            and all((pristine / "incoming" / f"{s}.parquet").exists() for s in SOURCES)
            and not any((pristine / "lake").glob("snapshots/*")))


def write_exact_pipeline(pristine: Path) -> None:
    """pipelines/nightly-exact.toml: the shipped nightly pipeline with the probabilistic
    pass off (the exact token passes only, like the peer)."""
    text = (pristine / "pipelines" / f"{SHIPPED_PIPELINE}.toml").read_text()
    text = re.sub(r'(?m)^name = ".*"$', f'name = "{EXACT_PIPELINE}"', text, count=1)
    new, n = re.subn(r"(?ms)(^\[match\.probabilistic\]\n(?:.*?\n)*?)enabled = true",
                     r"\1enabled = false", text, count=1)
    if n != 1:
        raise SystemExit("peer.py: cannot find `enabled = true` under [match.probabilistic] "
                         f"in {SHIPPED_PIPELINE}.toml")
    (pristine / "pipelines" / f"{EXACT_PIPELINE}.toml").write_text(new)


def copy_workspace(pristine: Path, dest: Path) -> None:
    """A fresh copy of the pristine workspace (empty registry). The incoming files are
    hard links: the same inodes, so both tools read the same bytes from the same cache."""
    if dest.exists():
        shutil.rmtree(dest)

    def ignore(d: str, names: list[str]) -> list[str]:
        return ["incoming"] if Path(d) == pristine else []

    shutil.copytree(pristine, dest, symlinks=True, ignore=ignore)
    (dest / "incoming").mkdir()
    for f in (pristine / "incoming").iterdir():
        if f.is_file():
            os.link(f, dest / "incoming" / f.name)


def parse_xmatch_summary(text: str) -> dict:
    """The per-source rows, persons and links from `xmatch run`'s printed summary."""
    sources, links = {}, {}
    persons = None
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line)
        if m and m.group(1) in SOURCES:
            sources[m.group(1)] = {"files": int(m.group(2)), "read": int(m.group(3)),
                                   "accepted": int(m.group(4)), "rejected": int(m.group(5))}
        m = re.match(r"^persons (\d+)", line)
        if m:
            persons = int(m.group(1))
        m = re.match(r"^(\w+)\s+linked\s+(\d+) \(([^)]*)\)", line)
        if m:
            by_pass = {}
            for part in filter(None, (p.strip() for p in m.group(3).split(","))):
                name, _, n = part.rpartition(" ")
                by_pass[name] = int(n)
            links[m.group(1)] = {"linked": int(m.group(2)), "by_pass": by_pass}
    stages = re.search(r"^stages: (.*)$", text, re.M)
    return {"sources": sources, "persons": persons, "links": links,
            "stages": stages.group(1) if stages else None}


# ---------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------

def gib(b: float) -> float:
    return b / 2**30


def file_sha256(path: Path) -> str:
    import hashlib  # noqa: PLC0415

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def du_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def warm_cache(incoming: Path) -> None:
    """Reads the incoming files once so that neither tool pays for a cold page cache."""
    for s in SOURCES:
        with open(incoming / f"{s}.parquet", "rb") as f:
            while f.read(1 << 24):
                pass


def bench(args: argparse.Namespace) -> int:
    given = Path(args.xmatch).resolve()
    if not os.access(given, os.X_OK):
        raise SystemExit(f"peer.py: {args.xmatch} is not an executable xmatch binary")
    noise_suffix = "" if args.noise == "default" else f"-{args.noise}"
    work = Path(args.dir or f"/tmp/xmatch-peer-{args.participants}-{args.seed}{noise_suffix}")
    work = work.resolve()
    pristine, runs, logs = work / "pristine", work / "runs", work / "logs"
    for d in (work, runs, logs):
        d.mkdir(parents=True, exist_ok=True)
    # A copy of the binary, so that a build into the same target directory during the
    # rounds (the target directory is shared on this machine) cannot change what is run.
    xmatch = str(work / "xmatch")
    shutil.copy2(given, xmatch)
    binary = {"given": str(given), "copy": xmatch, "sha256": file_sha256(Path(xmatch))}
    others = {}
    for spec in args.also:
        label, _, path = spec.partition("=")
        if not label or not os.access(path, os.X_OK):
            raise SystemExit(f"peer.py: --also {spec}: expected LABEL=BINARY, an executable")
        copy = work / f"xmatch-{label}"
        shutil.copy2(path, copy)
        others[label] = {"given": str(Path(path).resolve()), "copy": str(copy),
                         "sha256": file_sha256(copy)}
        log(f"also: {label} = {path} (sha256 {others[label]['sha256'][:12]})")
    env = xmatch_env()
    py = python_with_duckdb(args.duckdb)
    version = subprocess.run([xmatch, "--version"], capture_output=True, text=True).stdout.strip()
    duck = subprocess.run([py, "-c", "import duckdb; print(duckdb.__version__)"],
                          capture_output=True, text=True).stdout.strip()
    log(f"{version} ({given}, sha256 {binary['sha256'][:12]}, run as {xmatch}); "
        f"duckdb {duck} ({py}); work directory {work}")

    # The state, generated once (reused by a later invocation with the same binary, N,
    # seed and noise).
    generation = None
    if not state_is_there(pristine, args.participants, args.seed, args.noise, binary["sha256"]):
        if pristine.exists():
            shutil.rmtree(pristine)
        (work / "pristine.binary").unlink(missing_ok=True)
        r = measured([xmatch, "init", str(pristine)], logs / "init", env)
        must_succeed(r, "xmatch init")
        log(f"generating {args.participants} participants (seed {args.seed}, "
            f"{args.noise} noise) into {pristine / 'incoming'}")
        generation = measured([xmatch, "-w", str(pristine), "generate", "--participants",
                               str(args.participants), "--seed", str(args.seed),
                               "--format", "parquet", "--noise", args.noise],
                              logs / "generate", env)
        must_succeed(generation, "xmatch generate")
        (work / "pristine.binary").write_text(binary["sha256"] + "\n")
        log(f"generated in {generation['seconds']:.1f} s (not counted)")
    else:
        log(f"reusing the generated state in {pristine}")
    pipelines = {"shipped": [SHIPPED_PIPELINE], "exact": [EXACT_PIPELINE],
                 "both": [SHIPPED_PIPELINE, EXACT_PIPELINE]}[args.xmatch_pipeline]
    if EXACT_PIPELINE in pipelines:
        write_exact_pipeline(pristine)
    incoming = pristine / "incoming"
    key = pristine / "key" / "xmatch.key"
    warm_cache(incoming)

    samples: dict[str, list[dict]] = {}
    kinds: list[str] = []

    def record(kind: str, rnd: int, r: dict) -> None:
        if kind not in kinds:
            kinds.append(kind)
        r["round"] = rnd
        samples.setdefault(kind, []).append(r)
        # What is done so far, in case a later run fails or the machine stops.
        (work / "partial.json").write_text(json.dumps(samples, indent=2) + "\n")
        log(f"round {rnd} {kind}: {r['seconds']:.2f} s, peak {gib(r['peak_rss_bytes']):.2f} GiB"
            f" (load before {r['load_before']})")

    def xmatch_block(rnd: int, pipeline: str, label: str | None = None) -> None:
        tag = "xmatch" if pipeline == SHIPPED_PIPELINE else "xmatch-exact"
        binary_path = xmatch
        if label is not None:
            tag, binary_path = f"xmatch[{label}]", others[label]["copy"]
        ws = runs / f"{tag}-r{rnd}"
        copy_workspace(pristine, ws)
        cmd = [binary_path, "-w", str(ws), "run", pipeline]
        for label in ("first", "steady"):
            r = measured(cmd, logs / f"{tag}-{label}-r{rnd}", env)
            must_succeed(r, f"{tag} {label} run (round {rnd})")
            r["summary"] = parse_xmatch_summary(r.pop("stdout"))
            record(f"{tag} {label}", rnd, r)
        r["workspace_bytes"] = du_bytes(ws)
        if not args.keep:
            shutil.rmtree(ws)

    def peer_block(rnd: int) -> None:
        out = runs / f"peer-r{rnd}"
        if out.exists():
            shutil.rmtree(out)
        cmd = [py, str(Path(__file__).resolve()), "job", "--incoming", str(incoming),
               "--out", str(out), "--key", str(key), "--sql", str(args.sql),
               "--threads", str(args.threads)]
        r = measured(cmd, logs / f"peer-r{rnd}", None)
        must_succeed(r, f"the peer job (round {rnd})")
        r["job"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
        r["output_bytes"] = du_bytes(out)
        record("peer", rnd, r)
        if not args.keep:
            shutil.rmtree(out)

    blocks = [lambda rnd, p=p: xmatch_block(rnd, p) for p in pipelines]
    blocks += [lambda rnd, lb=lb: xmatch_block(rnd, SHIPPED_PIPELINE, lb) for lb in others]
    blocks += [peer_block]
    for rnd in range(1, args.rounds + 1):
        order = blocks if rnd % 2 == 1 else list(reversed(blocks))
        for block in order:
            block(rnd)

    result = summarize(args, work, version, duck, py, generation, kinds, samples)
    result["xmatch_binary"] = binary
    result["also_binaries"] = others
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def summarize(args, work, version, duck, py, generation, kinds, samples) -> dict:
    med = {k: {"seconds": statistics.median(r["seconds"] for r in samples[k]),
               "peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in samples[k])}
           for k in kinds}
    ratios = {}
    peer = {r["round"]: r for r in samples["peer"]}
    for k in kinds:
        if k == "peer":
            continue
        paired = [r["seconds"] / peer[r["round"]]["seconds"] for r in samples[k]]
        ratios[f"{k} / peer"] = {
            "ratio_of_medians": round(med[k]["seconds"] / med["peer"]["seconds"], 3),
            "median_of_paired_ratios": round(statistics.median(paired), 3),
            "paired_ratios": [round(x, 3) for x in paired],
        }
        # An --also build against the main binary's same run, round by round.
        if k.startswith("xmatch[") and ("xmatch " + k.rsplit(" ", 1)[1]) in samples:
            base_kind = "xmatch " + k.rsplit(" ", 1)[1]
            base = {r["round"]: r for r in samples[base_kind]}
            paired = [r["seconds"] / base[r["round"]]["seconds"] for r in samples[k]]
            ratios[f"{k} / {base_kind}"] = {
                "ratio_of_medians": round(med[k]["seconds"] / med[base_kind]["seconds"], 3),
                "median_of_paired_ratios": round(statistics.median(paired), 3),
                "paired_ratios": [round(x, 3) for x in paired],
            }
    return {
        "participants": args.participants, "seed": args.seed, "noise": args.noise,
        "rounds": args.rounds, "xmatch": version, "duckdb": duck, "duckdb_python": py,
        "peer_threads": args.threads, "cpus": os.cpu_count(), "work_dir": str(work),
        "generation_seconds": generation["seconds"] if generation else None,
        "medians": med, "ratios": ratios, "samples": samples,
    }


def render(res: dict) -> str:
    lines = []
    lines.append(f"paired benchmark: {res['participants']:,} participants, seed {res['seed']}, "
                 f"{res['noise']} noise, {res['rounds']} round(s), {res['cpus']} CPUs")
    settings = res["samples"]["peer"][-1]["job"]["settings"]
    lines.append(f"xmatch: {res['xmatch']} ({res['xmatch_binary']['given']}); "
                 f"peer: DuckDB {res['duckdb']}, threads {settings.get('threads')}, "
                 f"memory_limit {settings.get('memory_limit')} (DuckDB's default), "
                 f"preserve_insertion_order {settings.get('preserve_insertion_order')}")
    lines.append("")
    w = max(len(k) for k in res["medians"])
    lines.append(f"{'run':<{w}}  {'samples (s)':<28} {'median s':>9} {'peak GiB (median)':>18}"
                 f"  {'peak GiB samples':<20}")
    for k, m in res["medians"].items():
        s = res["samples"][k]
        secs = " ".join("%.2f" % r["seconds"] for r in s)
        peaks = " ".join("%.2f" % gib(r["peak_rss_bytes"]) for r in s)
        lines.append(f"{k:<{w}}  {secs:<28} {m['seconds']:>9.2f} "
                     f"{gib(m['peak_rss_bytes']):>18.2f}  {peaks:<20}")
    lines.append("")
    for name, r in res["ratios"].items():
        lines.append(f"ratio {name}: {r['ratio_of_medians']:.3f} (medians), "
                     f"paired per round {', '.join(f'{x:.3f}' for x in r['paired_ratios'])} "
                     f"(median {r['median_of_paired_ratios']:.3f})")
    # Rows and links: xmatch's last first run against the peer's last run.
    firsts = [k for k in res["samples"] if k.endswith(" first")]
    peer = res["samples"]["peer"][-1]["job"]
    lines.append("")
    header = f"{'source':<18} {'peer read':>11} {'peer linked':>12} {'(ssn / name+dob)':>22}"
    for k in firsts:
        header += f" | {k + ' read/accepted':>28} {'linked':>10}  passes"
    lines.append(header)
    for s in SOURCES:
        c = peer["counts"].get(s, {})
        by = (f"{c.get('by_ssn')} / {c.get('by_name_dob')}"
              if c.get("by_ssn") is not None else "")
        row = f"{s:<18} {c.get('read', ''):>11} {c.get('linked', ''):>12} {by:>22}"
        for k in firsts:
            sm = res["samples"][k][-1]["summary"]
            src = sm["sources"].get(s, {})
            ln = sm["links"].get(s, {})
            ra = f"{src.get('read', '')}/{src.get('accepted', '')}"
            linked = sm["persons"] if s == "participants" else ln.get("linked", "")
            passes = ("persons" if s == "participants" else
                      ", ".join(f"{p} {n}" for p, n in ln.get("by_pass", {}).items() if n))
            row += f" | {ra:>28} {linked!s:>10}  {passes}"
        lines.append(row)
    pc = peer["counts"].get("participants", {})
    lines.append(f"(participants row: peer 'linked' = rows, persons = {pc.get('persons')}; "
                 "xmatch 'linked' = persons)")
    lines.append("")
    lines.append("peer steps (last run): " + ", ".join(f"{n} {t:.2f}s" for n, t in peer["steps"]))
    for k in res["samples"]:
        if k != "peer":
            lines.append(f"{k} stages (last run): {res['samples'][k][-1]['summary']['stages']}")
    lines.append("")
    lines.append("commands (last round):")
    for k, s in res["samples"].items():
        lines.append(f"  {k}: {s[-1]['command']}")
    lines.append(f"results: {res['work_dir']}/result.json")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    ap.add_argument("--xmatch", help="path to the xmatch binary (a release build for figures)")
    ap.add_argument("--participants", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", help="work directory (default /tmp/xmatch-peer-N-SEED[-NOISE]); "
                    "the generated state in DIR/pristine is reused when N, seed and noise match")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--noise", choices=["default", "heavy"], default="default")
    ap.add_argument("--keep", action="store_true",
                    help="keep each round's xmatch workspace and peer output under DIR/runs")
    ap.add_argument("--json", help="also write the result as JSON to this file")
    ap.add_argument("--xmatch-pipeline", choices=["shipped", "exact", "both"], default="shipped",
                    help="shipped: nightly-crossmatch as it ships (probabilistic pass on); "
                    "exact: the same with [match.probabilistic] enabled = false; both")
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=BINARY",
                    help="also run the shipped pipeline with another build in every round "
                    "(an A/B of two builds); repeatable")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                    help="DuckDB threads (default: the machine's CPUs)")
    ap.add_argument("--sql", default=str(JOB_SQL), help="the peer job (default: job.sql here)")
    ap.add_argument("--duckdb", default="duckdb",
                    help="pip requirement for the venv, e.g. duckdb==2.0.1 (default: duckdb)")
    j = sub.add_parser("job", help="(internal) run the peer job once and print JSON")
    j.add_argument("--incoming", required=True)
    j.add_argument("--out", required=True)
    j.add_argument("--key", required=True)
    j.add_argument("--sql", default=str(JOB_SQL))
    j.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.cmd == "job":
        return run_job(args)
    if not args.xmatch:
        ap.error("--xmatch PATH is required")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
