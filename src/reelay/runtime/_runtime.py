"""`Runtime`: an app's functions served for the events of one home.

It ties the pieces together: the home's durable `State`, an `Executor` chosen
by URL, and the `Dispatcher` loop. ``reelay up`` is ``Runtime(...).serve(stop)``; tests,
benchmarks and the demo run it on a background thread with `start`/`stop`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Collection
from datetime import datetime
from typing import TextIO

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import ConfigError, HomeBusyError, ReelayError
from reelay.runtime._scratch import sweep_scratch
from reelay.runtime.app import App
from reelay.runtime.dispatcher import Dispatcher
from reelay.runtime.executors import Executor, open_executor
from reelay.runtime.loading import load_app
from reelay.sources import Sources
from reelay.state import FAILED, SCHEDULING, SUCCEEDED, Invocation, Scheduling

__all__ = ["App", "Runtime", "load_app", "wait_for_invocation"]

TERMINAL = (SUCCEEDED, FAILED)


class Runtime:
    """Serve ``app`` on the home in ``settings``. A context manager holding the home's lock.

    Entering takes the state's dispatcher lock (`HomeBusyError` if another dispatcher has
    it; with ``standby``, on a state shared by machines, it waits to take over instead),
    requeues what a previous dispatcher left claimed or running (recording attempts
    that were running as lost), appends the object events that crashed writers left
    unwritten (`Client.reconcile_objects`), sweeps the scratch of its dead workers,
    starts the executor, and starts consuming the app's event sources (``sources:``,
    not for a Runtime limited by ``only``). Leaving stops the sources, drains in-flight
    work and stops the executor, leaving no process behind.
    """

    def __init__(
        self,
        app: App,
        settings: Settings | None = None,
        *,
        executor: str | None = None,
        max_workers: int | None = None,
        out: TextIO | None = None,
        verbose: bool = False,
        only: Collection[str] | None = None,
        scheduling: Scheduling = "oldest-first",
        standby: bool = False,
    ) -> None:
        if scheduling not in SCHEDULING:
            raise ConfigError(f"unknown scheduling {scheduling!r}; valid: {', '.join(SCHEDULING)}")
        self.app = app
        self.only = only  # serve only these invocations (see `Dispatcher`)
        self.scheduling = scheduling
        self.standby = standby
        self.settings = settings or Settings.load()
        self.executor_url = executor or self.settings.executor_url
        self.max_workers = max_workers
        self.out = out
        self.verbose = verbose
        self.client = Client(self.settings)
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dispatcher: Dispatcher | None = None
        self.executor: Executor | None = None
        self.sources: Sources | None = None  # the app's event sources, consumed while serving
        self.recovered = 0
        self.reconciled = 0  # object events that crashed writers left, appended since start

    def __enter__(self) -> Runtime:
        try:
            state = self.client.state
            try:
                self._stack.enter_context(state.dispatcher_lock())
            except HomeBusyError as busy:
                if not state.shared:
                    raise
                if not self.standby:
                    raise HomeBusyError(
                        f"{busy}; stop it, or run `reelay up`, which stands by and takes "
                        "over when it stops"
                    ) from None
                if self.out is not None:
                    print(
                        f"standing by: {busy}; taking over when it stops", file=self.out, flush=True
                    )
                self._stack.enter_context(state.dispatcher_lock(wait=True))
                if self.out is not None:
                    print("taking over: this dispatcher now serves the state", file=self.out)
            self.recovered = state.release()
            self._reconcile()
            sweep_scratch(self.settings.home)
            if self.app.path is not None and self.only is None:
                state.set_meta("app_path", str(self.app.path))
            self.executor = self._stack.enter_context(
                open_executor(
                    self.executor_url,
                    max_workers=self.max_workers,
                    code=self.app.code if self.app.path is not None else None,
                )
            )
            self.dispatcher = Dispatcher(
                self.app,
                self.settings,
                state,
                self.executor,
                out=self.out,
                verbose=self.verbose,
                only=self.only,
                scheduling=self.scheduling,
                reconcile=self._reconcile,
                streams=self.client.streams,
            )
            self._stack.callback(self.dispatcher.close)
            if self.app.sources and self.only is None:
                # Its own threads; events they append wait in the log for the loop.
                self.sources = self._stack.enter_context(
                    Sources(
                        self.app.sources,
                        state,
                        region=self.settings.region,
                        log=self._log if self.out is not None else None,
                        verbose=self.verbose,
                    )
                )
                if self.out is not None:
                    for source in self.app.sources:
                        print(f"consuming {source.describe()}", file=self.out, flush=True)
                        where = self.client.store.location(source.bucket)
                        if where != f"s3://{source.real_bucket}":
                            print(
                                f"warning: the events of s3://{source.real_bucket} name "
                                f"objects that handlers read from {where} (the store's "
                                f"bucket {source.bucket!r}): they will not find them; make "
                                "realBucket and REELAY_STORE agree",
                                file=self.out,
                                flush=True,
                            )
        except BaseException:
            self._stack.close()
            self.client.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stack.close()
        self.client.close()

    def _log(self, line: str) -> None:
        """A line for ``out``, stamped as the dispatcher stamps its own."""
        stamp = datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {line}", file=self.out, flush=True)

    def _reconcile(self) -> None:
        """Settle the object writes that crashed writers left (at start, then with each
        scratch sweep: a worker killed mid ``put_object``). A store that does not answer
        now is tried again at the next sweep; the intents wait in the State."""
        try:
            self.reconciled += self.client.reconcile_objects()
        except ReelayError as exc:
            if self.out is not None:
                print(f"object writes not reconciled yet: {exc}", file=self.out, flush=True)

    # -- serving -----------------------------------------------------------------------

    def serve(
        self,
        stop: threading.Event | None = None,
        *,
        drain_s: float | None = None,
    ) -> None:
        """Run the dispatcher loop in this thread until ``stop`` is set, then drain."""
        assert self.dispatcher is not None, "use Runtime as a context manager"
        self.dispatcher.run(stop or self._stop, drain_s=drain_s)

    def start(self) -> Runtime:
        """Serve on a background thread (for tests, benchmarks and the demo)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.serve, name="reelay-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the drain to finish."""
        self._stop.set()
        if self.dispatcher is not None:
            self.dispatcher.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- waiting -------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until every logged event is routed and no invocation is active.

        Retries that are scheduled later count as queued, so with Lambda's default
        one-minute backoff this waits for them too.
        """
        state = self.client.state
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state.idle():
                return True
            time.sleep(0.02)
        return False

    def wait_for(self, request_id: str, timeout: float = 60.0) -> Invocation:
        """Wait until one invocation succeeded or failed for good; return it."""
        return wait_for_invocation(self.client, request_id, timeout)


def wait_for_invocation(client: Client, request_id: str, timeout: float) -> Invocation:
    """Poll the home until the invocation is terminal; `TimeoutError` if it is not in time."""
    deadline = time.monotonic() + timeout
    while True:
        inv = client.state.invocation(request_id)
        if inv.status in TERMINAL:
            return inv
        if time.monotonic() >= deadline:
            raise TimeoutError(f"invocation {request_id} is still {inv.status} after {timeout:g} s")
        time.sleep(0.01)
