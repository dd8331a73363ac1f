"""The workload side: the Pebble layer that runs gunicorn, and database migrations.

The rockcraft framework extensions lay the image out the same way for both frameworks: the
project in ``/<framework>/app``, a gunicorn configuration (port 8000, statsd to the exporter that
serves port 9102) in ``/<framework>/gunicorn.conf.py``, the service running as ``_daemon_``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ops

logger = logging.getLogger(__name__)

PYTHON = "/bin/python3"
APP_PORT = 8000
METRICS_PORT = 9102
METRICS_PATH = "/metrics"
SERVICE_USER = "_daemon_"
MIGRATION_TIMEOUT = 600.0


class WorkloadError(Exception):
    """The workload cannot be (re)started; the message says why and what to do."""


@dataclass(frozen=True)
class Framework:
    """What differs between the Django and the Flask layout."""

    name: str
    wsgi_app: str

    @property
    def prefix(self) -> str:
        """Prefix of the variables made from config options: ``DJANGO_`` or ``FLASK_``."""
        return f"{self.name.upper()}_"

    @property
    def container(self) -> str:
        """The workload container: ``django-app`` or ``flask-app``."""
        return f"{self.name}-app"

    @property
    def service(self) -> str:
        """The Pebble service running gunicorn (it replaces the image's own)."""
        return self.name

    @property
    def app_dir(self) -> str:
        """Where the extension puts the project."""
        return f"/{self.name}/app"

    @property
    def gunicorn_config(self) -> str:
        """The gunicorn configuration the extension ships."""
        return f"/{self.name}/gunicorn.conf.py"


def django(wsgi_app: str) -> Framework:
    """The Django layout, with the project's WSGI application path."""
    return Framework(name="django", wsgi_app=wsgi_app)


FLASK = Framework(name="flask", wsgi_app="app:app")


# gevent serves many slow clients per worker (the rock must ship gevent: the service's
# requirements.txt), gthread a fixed number of threads, sync one request at a time.
WORKER_CLASSES = ("sync", "gthread", "gevent")


@dataclass(frozen=True)
class WebserverConfig:
    """Gunicorn's server model, as paas-charm's ``webserver-*`` options set it.

    The charms' defaults (charmcraft.yaml) are the model the benchmarks measured, recorded in
    each service's ``webserver.json``; the charm tests check that the two agree.
    """

    worker_class: str
    workers: int
    threads: int
    timeout: int
    keepalive: int
    worker_connections: int

    def arguments(self) -> list[str]:
        """Gunicorn command-line arguments (they override the image's gunicorn.conf.py)."""
        return [
            "--worker-class",
            self.worker_class,
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--timeout",
            str(self.timeout),
            "--keep-alive",
            str(self.keepalive),
            "--worker-connections",
            str(self.worker_connections),
        ]


WORKER_SUFFIX = "-worker"


def health_check(worker: str) -> str:
    """The name of a worker's health check."""
    return f"{worker}-health"


@dataclass(frozen=True)
class Worker:
    """A process beside the web server, on every unit: paas-charm's ``*-worker`` services.

    It runs in the app's folder as the app's user, with the app's environment plus its own
    variables, and is restarted by Pebble when its HTTP health check keeps failing. The check
    has no level: Juju turns the ``alive`` and ``ready`` levels into the pod's probes, and a
    worker whose backend is down must not get the web server's container killed.

    Attributes:
        name: the Pebble service, ending in ``-worker``.
        command: the program and its arguments (a fixed command, never a shell line).
        environment: variables added to the app's environment (they win).
        health_url: what the check asks (``http://127.0.0.1:<port>/health``); 2xx is healthy.
        kill_delay: how long Pebble waits after SIGTERM before SIGKILL (Pebble's duration).
    """

    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None
    kill_delay: str | None = None

    def __post_init__(self) -> None:
        if not self.name.endswith(WORKER_SUFFIX):  # pragma: no cover (a programming error)
            raise ValueError(f"a worker's service name ends in {WORKER_SUFFIX}: {self.name}")

    @property
    def check(self) -> str:
        """The name of the worker's health check."""
        return health_check(self.name)

    def service(
        self, framework: Framework, environment: Mapping[str, str]
    ) -> ops.pebble.ServiceDict:
        """The Pebble service definition."""
        service: ops.pebble.ServiceDict = {
            "override": "replace",
            "summary": f"{self.name} of the {framework.name} application",
            "command": " ".join(self.command),
            "startup": "enabled",
            "user": SERVICE_USER,
            "working-dir": framework.app_dir,
            "environment": {**environment, **self.environment},
        }
        if self.kill_delay is not None:
            service["kill-delay"] = self.kill_delay
        if self.health_url is not None:
            service["on-check-failure"] = {self.check: "restart"}
        return service


def retired_layer(names: Sequence[str], checks: Sequence[str]) -> ops.pebble.Layer:
    """A layer that keeps workers no longer wanted from starting again (Pebble cannot remove).

    Args:
        names: the worker services to disable.
        checks: their health checks in the plan (a merge must not create a check).
    """
    layer: ops.pebble.LayerDict = {
        "services": {name: {"override": "merge", "startup": "disabled"} for name in names},
        "checks": {name: {"override": "merge", "startup": "disabled"} for name in checks},
    }
    return ops.pebble.Layer(layer)


def build_layer(
    framework: Framework,
    environment: Mapping[str, str],
    webserver: WebserverConfig,
    workers: Sequence[Worker] = (),
) -> ops.pebble.Layer:
    """The Pebble layer that runs the app under gunicorn on port 8000, and its workers.

    Args:
        framework: the framework layout.
        environment: the workload environment.
        webserver: gunicorn settings.
        workers: the processes to run beside the web server.

    Returns:
        The layer.
    """
    command = [
        PYTHON,
        "-m",
        "gunicorn",
        "-c",
        framework.gunicorn_config,
        framework.wsgi_app,
        "--bind",
        f"0.0.0.0:{APP_PORT}",
        *webserver.arguments(),
    ]
    services: dict[str, ops.pebble.ServiceDict] = {
        worker.name: worker.service(framework, environment) for worker in workers
    }
    checks: dict[str, ops.pebble.CheckDict] = {
        worker.check: {"override": "replace", "http": {"url": worker.health_url}}
        for worker in workers
        if worker.health_url is not None
    }
    return ops.pebble.Layer(
        {
            "summary": f"{framework.name} application",
            "description": "gunicorn serving the application, managed by the charm",
            "services": {
                **services,
                framework.service: {
                    "override": "replace",
                    "summary": f"{framework.name} application served by gunicorn",
                    "command": " ".join(command),
                    "startup": "enabled",
                    "user": SERVICE_USER,
                    "working-dir": framework.app_dir,
                    "environment": dict(environment),
                },
            },
            "checks": {
                **checks,
                f"{framework.name}-ready": {
                    "override": "replace",
                    "level": "ready",
                    "tcp": {"port": APP_PORT},
                },
            },
        }
    )


def migration_command(framework: Framework, container: ops.Container) -> list[str] | None:
    """The command that migrates the database before the app starts, if the app has one.

    Django always has ``manage.py migrate``; a Flask app opts in with ``migrate.sh`` or
    ``migrate.py`` at its root.

    Args:
        framework: the framework layout.
        container: the workload container.

    Returns:
        The command, or None when there is nothing to run.
    """
    if framework.name == "django":
        return [PYTHON, "manage.py", "migrate", "--noinput"]
    if container.exists(f"{framework.app_dir}/migrate.sh"):
        return ["bash", "migrate.sh"]
    if container.exists(f"{framework.app_dir}/migrate.py"):
        return [PYTHON, "migrate.py"]
    return None


def run_migrations(
    framework: Framework, container: ops.Container, environment: Mapping[str, str]
) -> None:
    """Migrate the database with the environment the app will run with.

    Args:
        framework: the framework layout.
        container: the workload container.
        environment: the workload environment.

    Raises:
        WorkloadError: the migration failed.
    """
    command = migration_command(framework, container)
    if command is None:
        return
    logger.info("running database migrations: %s", " ".join(command))
    try:
        process = container.exec(
            command,
            environment=dict(environment),
            working_dir=framework.app_dir,
            user=SERVICE_USER,
            timeout=MIGRATION_TIMEOUT,
        )
        process.wait_output()
    except ops.pebble.ExecError as exc:
        logger.error("migration failed (exit %s): %s", exc.exit_code, exc.stderr)
        raise WorkloadError("database migration failed; see juju debug-log") from exc
    except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        raise WorkloadError("database migration did not finish; see juju debug-log") from exc


def service_is_running(container: ops.Container, service: str) -> bool:
    """Whether the service exists in the plan and runs."""
    try:
        return container.get_service(service).is_running()
    except ops.ModelError:
        return False


def service_changed(container: ops.Container, layer: ops.pebble.Layer, service: str) -> bool:
    """Whether applying the layer would change the service (so it must be restarted)."""
    current = container.get_plan().services.get(service)
    wanted = layer.services[service]
    return current is None or current.to_dict() != wanted.to_dict()


def layer_changed(container: ops.Container, layer: ops.pebble.Layer) -> bool:
    """Whether applying the layer would change any of its services or checks."""
    plan = container.get_plan()
    for name, wanted in layer.services.items():
        current = plan.services.get(name)
        if current is None or current.to_dict() != wanted.to_dict():
            return True
    for name, check in layer.checks.items():
        current_check = plan.checks.get(name)
        if current_check is None or current_check.to_dict() != check.to_dict():
            return True
    return False


# Exit status of a service's configuration check that refuses the configuration; its standard
# error is then the service's own message. Any other failure means the check could not run.
CONFIG_REFUSED = 2
CONFIG_CHECK_TIMEOUT = 120.0


class ConfigRefusedError(WorkloadError):
    """The service's own validation refused the configuration; the message is the service's."""


def check_configuration(
    framework: Framework,
    container: ops.Container,
    command: list[str],
    environment: Mapping[str, str],
) -> None:
    """Run the service's configuration check with the environment it would start with.

    The service is the one authority on what it accepts: asking it (rather than re-implementing
    its rules in the charm) keeps charm and service from disagreeing, which would leave a
    service restarting forever while the charm reports active.

    Raises:
        ConfigRefusedError: the service refused; the message is its own.
        WorkloadError: the check could not run.
    """
    try:
        process = container.exec(
            command,
            environment=dict(environment),
            working_dir=framework.app_dir,
            user=SERVICE_USER,
            timeout=CONFIG_CHECK_TIMEOUT,
        )
        process.wait_output()
    except ops.pebble.ExecError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        message = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        if exc.exit_code == CONFIG_REFUSED and message:
            raise ConfigRefusedError(message) from exc
        logger.error("configuration check failed (exit %s): %s", exc.exit_code, stderr)
        raise WorkloadError(
            "the service's configuration check failed; see juju debug-log"
        ) from exc
    except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        raise WorkloadError("the service's configuration check did not finish") from exc


PROXY_VARIABLES = {
    "JUJU_CHARM_HTTP_PROXY": "HTTP_PROXY",
    "JUJU_CHARM_HTTPS_PROXY": "HTTPS_PROXY",
    "JUJU_CHARM_NO_PROXY": "NO_PROXY",
}


def proxy_environment(charm_environment: Mapping[str, str]) -> dict[str, str]:
    """The model's proxy settings (Juju hands them to the charm) as the workload reads them.

    Both spellings are set, since tools differ on which one they read (Python's urllib and
    requests read either, curl and git only the lower-case ``http_proxy``).
    """
    environment: dict[str, str] = {}
    for juju_name, name in PROXY_VARIABLES.items():
        value = charm_environment.get(juju_name, "").strip()
        if value:
            environment[name] = value
            environment[name.lower()] = value
    return environment
