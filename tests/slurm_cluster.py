"""A one-node SLURM cluster on loopback, for testing the SLURM profile for real.

Debian's packages (slurm-wlm, slurmdbd, munge, mariadb-server) are installed with apt-get when
missing. Every daemon runs from one folder: its own munge key and socket, its own MariaDB data
directory, configuration, state, spool, logs and free ports. The one thing outside it is a
link from /etc/slurm/slurm.conf to its configuration, for as long as it runs (see
SYSTEM_CONFIG); a machine with a SLURM configuration of its own is refused, never changed.
`LocalSlurmCluster.start()` starts munge, MariaDB, slurmdbd (the accounting daemon that `sacct`,
the executor plugin's job-status query, needs), slurmctld and slurmd, waits until the node is
idle and registers an account; `stop()` ends them all and removes the link.

A step that fails raises `ClusterError` with the step, the command and the daemon's log, so a
cluster that cannot start fails its test with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
PROGRAMS = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged", "mariadbd")
ACCOUNT = "vecomp"
DB_PASSWORD = "vecomp-test"
PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "config.yaml"
SBIN = "/usr/sbin:/sbin"  # where Debian puts the daemons and sacctmgr, often not on PATH
# Job steps find the configuration where every node of a real cluster has it: the executor
# plugin's job step drops SLURM_CONF from the environment of the srun it starts.
SYSTEM_CONFIG = Path("/etc/slurm/slurm.conf")
MARKER = "# vecomp test cluster (tests/slurm_cluster.py); removed when it stops"


class ClusterError(RuntimeError):
    """The cluster could not be installed or started; the message says which step and why."""


def cannot_run_here() -> str | None:
    """Why this machine cannot run the test cluster at all (None if it can): its programs are
    missing and cannot be installed, or it is not root (slurmd runs as root)."""
    missing = [p for p in PROGRAMS if not _which(p)]
    if os.geteuid() != 0:
        return (
            "the one-node SLURM test cluster needs root (slurmd runs as root"
            + (f"; {', '.join(missing)} missing and apt-get needs root too" if missing else "")
            + "); CI runs it as root"
        )
    if missing and not shutil.which("apt-get"):
        return f"{', '.join(missing)} not found and no apt-get to install {' '.join(PACKAGES)}"
    return None


def install_packages() -> None:
    """Install Debian's SLURM, munge and MariaDB packages when a program is missing."""
    missing = [p for p in PROGRAMS if not _which(p)]
    if not missing:
        return
    reason = cannot_run_here()
    if reason:
        raise ClusterError(reason)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    for command in (["apt-get", "update", "-q"], install):
        _run(command, "installing the SLURM packages", env=env, timeout=1200)


def with_sbin(path: str) -> str:
    """A PATH that also finds the SLURM, munge and MariaDB daemons and admin tools."""
    return f"{path}:{SBIN}"


def _which(program: str) -> str | None:
    return shutil.which(program, path=with_sbin(os.environ.get("PATH", "")))


def _resolved(command: list[str]) -> list[str]:
    """The command with its program looked up on PATH and the sbin folders."""
    return [_which(command[0]) or command[0], *command[1:]]


def _run(command: list[str], step: str, log: Path | None = None, **kwargs) -> str:
    kwargs.setdefault("timeout", 120)
    try:
        result = subprocess.run(_resolved(command), capture_output=True, text=True, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterError(f"{step}: {' '.join(command)} failed: {error}") from error
    if result.returncode != 0:
        raise ClusterError(
            f"{step}: {' '.join(command)} exited {result.returncode}\n"
            f"{result.stdout}{result.stderr}{_tail(log)}"
        )
    return result.stdout


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(log.read_text().splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(command: list[str], env: dict) -> subprocess.CompletedProcess | None:
    """Run a client command that may not be answered yet; None when it could not run."""
    try:
        return subprocess.run(
            _resolved(command), capture_output=True, text=True, env=env, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


@dataclass
class LocalSlurmCluster:
    """One node (this machine, all its CPUs) in one partition, with accounting."""

    root: Path
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    system_config: Path = SYSTEM_CONFIG
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.ports = {name: _free_port() for name in ("ctld", "slurmd", "dbd", "db")}
        self.config = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "run" / "munge.socket"
        self.db_socket = self.root / "run" / "mysqld.sock"

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, sacct, Snakemake's executor plugin) needs to see the cluster."""
        path = with_sbin(os.environ.get("PATH", ""))
        return {**os.environ, "SLURM_CONF": str(self.config), "PATH": path}

    def start(self) -> LocalSlurmCluster:
        if os.geteuid() != 0:
            raise ClusterError(
                "the test cluster runs slurmd and slurmctld as root and links "
                f"{self.system_config}: run the SLURM tests as root (a container or CI machine), "
                "or deselect them with -m 'not slurm'"
            )
        install_packages()
        for folder in ("etc", "log", "state", "spool", "run", "db"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        try:
            self._start_munge()
            self._start_database()
            self.write_configs()
            self.link_system_config()
            self._start("slurmdbd", ["slurmdbd", "-D"])
            self._wait(self._dbd_answers, "slurmdbd", self._log("slurmdbd"))
            self._register_cluster()
            self._start("slurmctld", ["slurmctld", "-D", "-i"])
            self._start("slurmd", ["slurmd", "-D", "-N", self.host])
            self._wait(self._node_idle, "slurmd (node idle)", self._log("slurmd"), timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel what still runs, end every daemon (newest first) and remove the system link;
        safe to call twice."""
        if "slurmctld" in self.processes:  # a failed test may leave jobs behind
            _answers(["scancel", "--full", "--user", _user()], self.env)
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        link = self.system_config
        if link.is_symlink() and link.resolve() == self.config:
            link.unlink()

    def link_system_config(self) -> None:
        """Link /etc/slurm/slurm.conf to this cluster's file; never replace a foreign one."""
        link = self.system_config
        if link.exists() or link.is_symlink():
            stale = not link.exists() or link.read_text().startswith(MARKER)  # dangling or ours
            if not stale:
                raise ClusterError(
                    f"{link} exists and is not a test cluster's: this machine has a SLURM "
                    "configuration of its own, which the test cluster will not replace. Run "
                    "the SLURM tests on a machine without one."
                )
            link.unlink()  # left by a test run that was killed
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self.config)
        except OSError as error:
            raise ClusterError(f"linking {link} to {self.config}: {error}") from error

    # --- daemons ---------------------------------------------------------------------------
    def _log(self, name: str) -> Path:
        return self.root / "log" / f"{name}.log"

    def _wait(self, ready, step: str, log: Path, timeout: float = 60) -> None:
        """Poll ``ready()`` until it holds; fail at once if a daemon has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError(
                        f"{step}: {name} exited ({process.returncode}){_tail(self._log(name))}"
                    )
            time.sleep(0.5)
        raise ClusterError(f"{step}: not ready after {timeout:.0f} s{_tail(log)}")

    def _start(self, name: str, command: list[str]) -> None:
        try:
            with self._log(name).open("a") as log:  # the daemon keeps its own descriptor
                process = subprocess.Popen(
                    _resolved(command), stdout=log, stderr=log, env=self.env, start_new_session=True
                )
        except OSError as error:
            raise ClusterError(f"starting {name}: {error}") from error
        self.processes[name] = process
        time.sleep(0.5)
        if process.poll() is not None:
            raise ClusterError(
                f"{name} exited at once ({process.returncode}){_tail(self._log(name))}"
            )

    def _start_munge(self) -> None:
        key = self.root / "etc" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        self._start(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.root / 'run' / 'munged.pid'}",
                f"--seed-file={self.root / 'run' / 'munged.seed'}",
                f"--log-file={self._log('munged')}",
            ],
        )
        self._wait(self.munge_socket.exists, "munged", self._log("munged"))

    def _start_database(self) -> None:
        data = self.root / "db"
        if not (data / "mysql").exists():
            _run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={data}",
                    "--user=root",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                "initialising MariaDB",
                timeout=300,
            )
        self._start(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                f"--socket={self.db_socket}",
                f"--port={self.ports['db']}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={self.root / 'run' / 'mariadbd.pid'}",
                "--innodb-buffer-pool-size=64M",
            ],
        )
        self._wait(self.db_socket.exists, "MariaDB", self._log("mariadbd"))
        grant = (
            f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        _run(
            ["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-uroot", "-e", grant],
            "creating the accounting database user",
            self._log("mariadbd"),
        )

    def write_configs(self) -> None:
        etc, auth = self.root / "etc", f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}"
        cpus = os.cpu_count() or 1
        memory = _memory_mb(cpus)
        self.config.write_text(f"""\
{MARKER}
ClusterName=vecomp
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ports["ctld"]}
SlurmdPort={self.ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
{auth}
CredType=cred/munge
StateSaveLocation={self.root / "state"}
SlurmdSpoolDir={self.root / "spool"}
SlurmctldPidFile={self.root / "run" / "slurmctld.pid"}
SlurmdPidFile={self.root / "run" / "slurmd.pid"}
SlurmctldLogFile={self._log("slurmctld")}
SlurmdLogFile={self._log("slurmd")}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports["dbd"]}
AccountingStoragePass={self.munge_socket}
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
MpiDefault=none
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=main Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        dbd = etc / "slurmdbd.conf"
        dbd.write_text(f"""\
{auth}
DbdHost={self.host}
DbdAddr=127.0.0.1
DbdPort={self.ports["dbd"]}
SlurmUser=root
PidFile={self.root / "run" / "slurmdbd.pid"}
LogFile={self._log("slurmdbd")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["db"]}
StorageUser=slurm
StoragePass={DB_PASSWORD}
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)

    def _dbd_answers(self) -> bool:
        result = _answers(["sacctmgr", "-n", "list", "cluster"], self.env)
        return result is not None and result.returncode == 0

    def _register_cluster(self) -> None:
        user_args = ["add", "user", _user(), f"account={ACCOUNT}", f"defaultaccount={ACCOUNT}"]
        for args in (["add", "cluster", "vecomp"], ["add", "account", ACCOUNT], user_args):
            result = _answers(["sacctmgr", "-i", *args], self.env)
            output = "no answer within 30 s" if result is None else result.stdout + result.stderr
            if result is None or (result.returncode != 0 and "already exists" not in output):
                raise ClusterError(
                    f"sacctmgr {' '.join(args)}: {output}{_tail(self._log('slurmdbd'))}"
                )

    def _node_idle(self) -> bool:
        result = _answers(["sinfo", "-h", "-N", "-o", "%T"], self.env)
        return result is not None and result.returncode == 0 and result.stdout.strip() == "idle"


def _user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _largest_job_memory_mb() -> int:
    """The most memory profiles/slurm asks for one job; a group asks for the sum over the jobs
    it would run side by side, at most one per core."""
    profile = yaml.safe_load(PROFILE.read_text())
    requests = [profile["default-resources"], *profile["set-resources"].values()]
    return max(r.get("mem_mb", 0) for r in requests)


def _memory_mb(cpus: int) -> int:
    """The node's RealMemory: this machine's, but at least what the SLURM profile can ask.

    Memory is not a consumable resource here (CR_Core), so the paper-scale requests of
    profiles/slurm (its largest per job, times the jobs a group runs side by side) are accepted
    on a smaller machine, as they are meant to be on a real cluster, and no job waits for memory.
    """
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(int(line.split()[1]) // 1024, _largest_job_memory_mb() * cpus)
    raise ClusterError("cannot read MemTotal from /proc/meminfo")
