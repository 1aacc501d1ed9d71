"""CA rotation: move a rotator's sets from one Private CA to another without
a moment where a consumer distrusts a certificate it is shown.

Stages, each recorded in the trust document (`ca_rotation`) before and after
every step, so a run that stops (crash, pause, timeout) resumes where it was:

    trust    add the new CA's root to the trust bundle; if that changed the
             bundle, rotate every set once (still from the old CA) and wait
             until each rotation is delivered, so every consumer (restarted
             or reloaded since) holds the new root
    move     tag each set `certrotor:ca` = the new CA, rotate it, wait until
             delivered and check its current certificate is the new CA's
    prune    only once no current certificate comes from the old CA: mark it
             retired (its root leaves the bundle unless the new CA shares it)
    disable  optionally, disable the old CA in Private CA
    done

`rollback` is allowed until prune: it moves every set back to the old CA
(tag, rotate, wait) and then retires the new CA. `pause` sets a flag the
running operation checks between sets (and while it follows a re-key
execution, which it then stops). The move (and a rollback's way back) runs
through the fleet re-key state machine when the ports give one: one
execution over the sets the old CA issued, followed, then every set waited
on until delivered. Otherwise, and for stage trust, rotations are started
through the same trigger as issue-now (RotateSecret), at most `parallel` at
a time and `min_interval` apart, so the Secrets Manager write quota and the
rotation function's reserved concurrency bound the pace, as for any rotation.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certrotor.errors import CertrotorError, IntegrityError, NotIssuedError, RotationError
from certrotor.layout import Manifest
from certrotor.ports import CURRENT, SecretPort, pending_version
from certrotor.services.rotation import TAG_CA, TAG_REDEPLOYED
from certrotor.services.trust import CaStatus, TrustDocument, TrustStore

STAGES = ("trust", "move", "prune", "disable", "done")
# Re-key executions one move may take: sets whose rotation was already
# running, or failed, get another execution.
MAX_EXECUTIONS = 3
ROLLED_BACK = "rolled_back"


class CaRotationError(CertrotorError):
    """The CA rotation cannot go on as asked (the message says why and what to do)."""


class Paused(CaRotationError):
    """An operator paused the CA rotation; it resumes with `certrotor ca rotate`."""


class Trigger(Protocol):
    def start(self, secret_id: str) -> str: ...


class RekeyProgress(Protocol):
    status: str
    failed: dict[str, str]

    def line(self) -> str: ...


class Rekey(Protocol):
    """The fleet re-key state machine (certrotor.fleet.rekey.RekeyExecutions)."""

    state_machine: str

    def start(self, from_ca: str, reason: str) -> str | None: ...
    def progress(self, execution: str) -> RekeyProgress: ...
    def stop(self, execution: str) -> None: ...


@dataclass(frozen=True)
class CaPorts:
    """What a CA rotation needs from AWS (or the emulator)."""

    secrets: SecretPort
    trust: TrustStore
    trigger: Trigger
    ca_chain: Callable[[str], str]
    disable_ca: Callable[[str], None]
    # When the rotator's re-key state machine exists, the move (and a
    # rollback) runs through it; else through the paced loop here.
    rekey: Rekey | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CaRotation:
    """One rotator's CA rotation over its sets (by manifest secret name)."""

    def __init__(
        self,
        ports: CaPorts,
        sets: Sequence[str],
        *,
        say: Callable[[str], None] = lambda line: None,
        now: Callable[[], dt.datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        parallel: int = 5,
        min_interval: float = 0.2,
        poll: float = 2.0,
        timeout: float = 900.0,
    ) -> None:
        if not sets:
            raise CaRotationError("the rotator has no sets to move")
        self._ports = ports
        self._sets = sorted(sets)
        self._say = say
        self._now = now
        self._sleep = sleep
        self._clock = clock
        self._parallel = max(1, parallel)
        self._min_interval = min_interval
        self._poll = poll
        self._timeout = timeout
        self._last_start: float | None = None

    # -- state ------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        state = self._ports.trust.load().ca_rotation
        return dict(state) if state is not None else None

    def _load(self) -> tuple[TrustDocument, dict[str, Any]]:
        document = self._ports.trust.load()
        if document.ca_rotation is None:
            raise CaRotationError("no CA rotation in progress")
        return document, _copy(document.ca_rotation)

    def _save(
        self,
        state: Mapping[str, Any],
        change: Callable[[TrustDocument], TrustDocument] | None = None,
        own_pause: bool = False,
    ) -> TrustDocument:
        """Write the rotation state (and `change` to the CAs) on top of the
        trust document as it is now: a concurrent writer's CA (the monitor)
        is kept, and a pause requested meanwhile is kept unless this write
        sets the pause itself (`own_pause`)."""
        state = {**state, "updated": self._now().isoformat(timespec="seconds")}

        def apply(fresh: TrustDocument) -> TrustDocument:
            merged = dict(state)
            if not own_pause and fresh.ca_rotation is not None:
                merged["paused"] = bool(fresh.ca_rotation.get("paused", False))
            return (change(fresh) if change is not None else fresh).with_rotation(merged)

        after, _ = self._ports.trust.update(apply)
        return after

    # -- operations -------------------------------------------------------------------

    def rotate(self, to_arn: str, disable_old: bool = False, until: str | None = None) -> dict[str, Any]:
        """Start a CA rotation to `to_arn`, or resume the one in progress; run
        it to the end, or until paused, or until stage `until` is reached
        (stopping before it). Returns the state it stopped in."""
        if until is not None and until not in STAGES:
            raise CaRotationError(f"--until must be one of {', '.join(STAGES)}")
        document = self._ports.trust.load()
        state = document.ca_rotation
        if state is not None and state.get("stage") not in ("done", ROLLED_BACK):
            if state.get("to") != to_arn:
                raise CaRotationError(
                    f"a CA rotation to {state.get('to')} is in progress (stage {state.get('stage')}); "
                    "finish it (certrotor ca rotate --to that ARN) or roll it back first"
                )
            state = _copy(state)
            state["paused"] = False
            self._say(f"resuming the CA rotation to {to_arn} at stage {state['stage']}")
            self._save(state, own_pause=True)
        else:
            self._begin(document, to_arn, disable_old)
        return self._run(until)

    def _begin(self, document: TrustDocument, to_arn: str, disable_old: bool) -> TrustDocument:
        active = [c.arn for c in document.cas if c.status == CaStatus.ACTIVE]
        if to_arn in active:
            raise CaRotationError(f"{to_arn} is already this rotator's active CA")
        if len(active) != 1:
            raise CaRotationError(
                f"the trust bundle lists {len(active)} active CAs; expected exactly one to rotate away from"
            )
        from_arn = active[0]
        chain = self._ports.ca_chain(to_arn)
        now = self._now()
        with_new = document.with_ca(to_arn, chain, CaStatus.INCOMING, now)
        changed = with_new.revision != document.revision
        state = {
            "from": from_arn,
            "to": to_arn,
            "stage": "trust",
            "paused": False,
            "disable_old": disable_old,
            "trust_changed": changed,
            "started": self._now().isoformat(timespec="seconds"),
            "sets": {},
        }
        self._say(
            f"CA rotation {from_arn} -> {to_arn}: the new CA's root "
            + ("is added to the trust bundle" if changed else "is already in the trust bundle")
            + f" (revision {with_new.revision})"
        )

        def begin(fresh: TrustDocument) -> TrustDocument:
            if fresh.ca_rotation is not None and fresh.ca_rotation.get("stage") not in ("done", ROLLED_BACK):
                raise CaRotationError(f"another CA rotation began meanwhile (to {fresh.ca_rotation.get('to')})")
            added = fresh.with_ca(to_arn, chain, CaStatus.INCOMING, now)
            # Whether this write changes the anchors consumers hold, decided on the
            # document it is written on.
            return added.with_rotation({**state, "trust_changed": added.revision != fresh.revision})

        after, _ = self._ports.trust.update(begin)
        return after

    def advance(self, to_arn: str, until: str | None = None, max_starts: int = 50) -> dict[str, Any] | None:
        """One bounded pass, for a scheduled caller (the monitor, when the
        deploy asks for a CA rotation): begin the rotation to `to_arn` if
        none is recorded, start at most `max_starts` rotations (paced),
        record the deliveries seen, and go on to the next stage once a stage
        is done, stopping before `until`. Never waits for a delivery; a
        paused, finished or rolled-back rotation is left as it is. Returns
        the state (None when the rotator is on `to_arn` already)."""
        if until is not None and until not in STAGES:
            raise CaRotationError(f"until must be one of {', '.join(STAGES)}")
        document = self._ports.trust.load()
        state = document.ca_rotation
        if state is None or state.get("stage") in ("done", ROLLED_BACK):
            if state is not None and state.get("to") == to_arn:
                return dict(state)
            known = document.ca(to_arn)
            if known is not None and known.status == CaStatus.ACTIVE:
                return None
            self._begin(document, to_arn, disable_old=False)
        elif state.get("to") != to_arn:
            raise CaRotationError(
                f"a CA rotation to {state.get('to')} is in progress (stage {state.get('stage')}); "
                f"not starting one to {to_arn}: finish or roll it back with certrotor ca"
            )
        budget = [max_starts]
        for _ in range(len(STAGES)):
            _, state = self._load()
            stage = state["stage"]
            if state.get("paused"):
                self._say(f"CA rotation paused at stage {stage}; nothing done")
                return state
            if stage in ("done", ROLLED_BACK, "rolling_back") or stage == until:
                return state
            # A pass records each set's progress in the trust document: the
            # state loaded before it is stale, so it is loaded again.
            if stage == "trust":
                if state.get("trust_changed") and not self._pass(state, "refresh", None, budget):
                    break
                self._advance(self._load()[1], "move")
            elif stage == "move":
                if not self._pass(state, "move", state["to"], budget):
                    break
                self._advance(self._load()[1], "prune")
            elif stage == "prune":
                self._stage_prune()
            else:
                self._ports.disable_ca(state["from"])
                self._advance(state, "done")
        _, state = self._load()
        return state

    def _pass(self, state: dict[str, Any], step: str, to_arn: str | None, budget: list[int]) -> bool:
        """Without waiting: record the sets whose `step` rotation was
        delivered, start it for others while the budget lasts (tagged for
        `to_arn` first, unless already on it; a set with a rotation already
        running is left for the next pass). True when every set is done."""
        done = 0
        for name in self._sets:
            record = state["sets"].get(name, {})
            if record.get(f"{step}_done"):
                done += 1
                continue
            token = record.get(step)
            if token is None:
                if budget[0] <= 0:
                    continue
                try:
                    if to_arn is not None:
                        self._ports.secrets.tag(name, TAG_CA, to_arn)
                    on_target = to_arn is not None and self._current_ca(name) == to_arn
                    token = None if on_target else self._start_now(name)
                except RotationError as exc:
                    self._say(f"{step}: {name}: {exc}; next pass")
                    continue
                budget[0] -= 1
                if token is None:
                    self._record(name, {f"{step}_done": True})
                    done += 1
                    continue
                self._record(name, {step: token})
            elif self._delivered(name, token):
                self._record(name, {f"{step}_done": True})
                done += 1
        self._say(f"{step}: {done}/{len(self._sets)} sets delivered")
        return done == len(self._sets)

    def _start_now(self, name: str) -> str:
        """Start a rotation, paced, without waiting for one already running."""
        if self._last_start is not None:
            wait = self._min_interval - (self._clock() - self._last_start)
            if wait > 0:
                self._sleep(wait)
        self._last_start = self._clock()
        return self._ports.trigger.start(name)

    def _delivered(self, name: str, token: str) -> bool:
        info = self._ports.secrets.describe(name)
        current = info.version_with(CURRENT)
        redeployed = info.tags.get(TAG_REDEPLOYED)
        if current != token and token not in info.versions:
            raise CaRotationError(f"{name}: version {token} is gone; resume with certrotor ca rotate")
        return current == token and (redeployed is None or redeployed == token)

    def pause(self) -> dict[str, Any]:
        _, state = self._load()
        state["paused"] = True
        self._save(state, own_pause=True)
        self._say(f"pause requested at stage {state['stage']}; the running operation stops after its current set")
        return state

    def rollback(self) -> dict[str, Any]:
        """Move every set back to the old CA and retire the new one; only
        before the old CA left the trust bundle."""
        _, state = self._load()
        # A stage names what runs next: at "prune" the old CA is still trusted.
        if state["stage"] not in ("trust", "move", "prune", "rolling_back"):
            raise CaRotationError(
                f"the CA rotation is at stage {state['stage']}: the old CA left the trust bundle, "
                "so it cannot be rolled back; rotate to the old CA as a new CA rotation instead"
            )
        state["stage"], state["paused"] = "rolling_back", False
        self._save(state, own_pause=True)
        from_arn, to_arn = state["from"], state["to"]
        self._say(f"rolling back: moving every set back to {from_arn}")
        self._move_all(state, "back", from_arn, to_arn)
        _, state = self._load()
        state["stage"] = ROLLED_BACK
        now = self._now()
        self._save(state, change=lambda fresh: fresh.with_status(to_arn, CaStatus.RETIRED, now))
        self._say(f"rolled back: every set is on {from_arn}; {to_arn} is no longer trusted unless it shares a root")
        return state

    # -- the stages ---------------------------------------------------------------------

    def _run(self, until: str | None = None) -> dict[str, Any]:
        while True:
            _, state = self._load()
            stage = state["stage"]
            if stage in ("done", ROLLED_BACK):
                self._say(f"CA rotation {stage}")
                return state
            if stage == until:
                self._say(f"stopped before stage {stage}; run certrotor ca rotate again to go on")
                return state
            if stage == "trust":
                self._stage_trust(state)
            elif stage == "move":
                self._stage_move(state)
            elif stage == "prune":
                self._stage_prune()
            elif stage == "disable":
                self._ports.disable_ca(state["from"])
                self._say(f"disabled {state['from']} in Private CA")
                _, state = self._load()
                self._advance(state, "done")
            else:
                raise CaRotationError(f"unknown CA rotation stage {stage!r}")

    def _advance(
        self, state: dict[str, Any], stage: str, change: Callable[[TrustDocument], TrustDocument] | None = None
    ) -> None:
        state["stage"] = stage
        self._save(state, change)
        self._say(f"stage {stage}")

    def _stage_trust(self, state: dict[str, Any]) -> None:
        if state.get("trust_changed"):
            self._say("stage trust: rotating every set once so every consumer reads the new trust bundle")
            self._each_set(state, "refresh", self._refresh_one)
        _, state = self._load()
        self._advance(state, "move")

    def _stage_move(self, state: dict[str, Any]) -> None:
        self._say(f"stage move: moving every set to {state['to']}")
        self._move_all(state, "move", state["to"], state["from"])
        _, state = self._load()
        self._advance(state, "prune")

    def _stage_prune(self) -> None:
        document, state = self._load()
        on_old = [name for name in self._sets if self._current_ca(name) != state["to"]]
        if on_old:
            raise CaRotationError(
                f"not removing {state['from']} from the trust bundle: {len(on_old)} set(s) are not on the new CA "
                f"({', '.join(on_old[:5])}); resume with certrotor ca rotate"
            )
        now = self._now()

        def prune(fresh: TrustDocument) -> TrustDocument:
            retired = fresh.with_status(state["from"], CaStatus.RETIRED, now)
            return retired.with_status(state["to"], CaStatus.ACTIVE, now)

        revision = prune(document).revision
        self._say(f"stage prune: {state['from']} retired; trust bundle revision {revision}")
        self._advance(state, "disable" if state.get("disable_old") else "done", prune)

    # -- moving every set ----------------------------------------------------------------

    def _move_all(self, state: dict[str, Any], step: str, to_arn: str, from_arn: str) -> None:
        """Every set onto `to_arn`: through the re-key state machine when
        there is one, else set by set in the paced loop."""
        rekey = self._ports.rekey
        if rekey is None:
            self._say(
                f"{step}: no re-key state machine; rotating set by set "
                f"(at most {self._parallel} at once, {self._min_interval:g} s apart)"
            )
            self._each_set(state, step, lambda name: self._move_one(name, to_arn))
            return
        self._say(f"{step}: through the re-key state machine {rekey.state_machine} (sets issued by {from_arn})")
        for name in self._sets:
            self._check_paused()
            self._ports.secrets.tag(name, TAG_CA, to_arn)
        key = f"{step}_execution"
        for _ in range(MAX_EXECUTIONS):
            _, state = self._load()
            execution = state.get(key)
            if execution is None and any(self._current_ca(name) != to_arn for name in self._sets):
                self._check_paused()
                execution = rekey.start(from_arn, f"certrotor ca rotate: {step} to {to_arn}")
                if execution is not None:
                    state[key] = execution
                    state.setdefault("executions", []).append(execution)
                    self._save(state)
                    self._say(f"{step}: started {execution}")
            if execution is not None:
                self._follow(rekey, step, execution)
            for name in self._sets:
                self._wait_settled(name)
            _, state = self._load()
            state[key] = None
            moved = [name for name in self._sets if self._current_ca(name) == to_arn]
            for name in moved:
                state["sets"][name] = {**state["sets"].get(name, {}), f"{step}_done": True}
            self._save(state)
            self._say(f"{step}: {len(moved)}/{len(self._sets)} sets delivered on {to_arn}")
            if len(moved) == len(self._sets):
                return
        left = [name for name in self._sets if self._current_ca(name) != to_arn]
        raise CaRotationError(
            f"{step}: {len(left)} set(s) still not on {to_arn} after {MAX_EXECUTIONS} re-key executions "
            f"({', '.join(left[:5])}); see certrotor rekey --status, fix them and resume with certrotor ca rotate"
        )

    def _follow(self, rekey: Rekey, step: str, execution: str) -> None:
        """Print the execution's progress until it ends; a pause stops it
        (the sets it has not started stay for the resumed run)."""
        last = ""
        while True:
            progress = rekey.progress(execution)
            line = progress.line()
            if line != last:
                self._say(f"{step}: {line}")
                last = line
            if progress.status != "RUNNING":
                for name, why in sorted(progress.failed.items()):
                    self._say(f"{step}: {name}: {why}")
                return
            state = self._ports.trust.load().ca_rotation or {}
            if state.get("paused"):
                rekey.stop(execution)
                raise Paused(
                    f"CA rotation paused at stage {state.get('stage')}: stopped {execution}; "
                    "resume with certrotor ca rotate"
                )
            self._sleep(self._poll)

    def _wait_settled(self, name: str) -> None:
        """Until no rotation of the set is pending and its current version is
        delivered (redeployed, for a set that records it)."""
        give_up = self._clock() + self._timeout
        while True:
            info = self._ports.secrets.describe(name)
            current = info.version_with(CURRENT)
            redeployed = info.tags.get(TAG_REDEPLOYED)
            pending = pending_version(info.versions)
            if pending is None and (redeployed is None or redeployed == current):
                return
            if self._clock() >= give_up:
                raise CaRotationError(
                    f"{name}: not settled within {self._timeout:.0f}s (current {current}, pending {pending}); "
                    "fix it and resume with certrotor ca rotate"
                )
            self._sleep(self._poll)

    # -- per set ---------------------------------------------------------------------------

    def _each_set(self, state: dict[str, Any], step: str, start: Callable[[str], str | None]) -> None:
        """For every set not done with `step`: start (at most `parallel` at
        once), record the token, wait until delivered, record it done."""
        todo = [name for name in self._sets if not state["sets"].get(name, {}).get(f"{step}_done")]
        total = len(self._sets)
        for first in range(0, len(todo), self._parallel):
            batch = todo[first : first + self._parallel]
            waiting: dict[str, str] = {}
            for name in batch:
                self._check_paused()
                recorded = state["sets"].get(name, {}).get(step)
                token = recorded or start(name)
                if token is None:
                    self._record(name, {f"{step}_done": True})
                    continue
                if not recorded:
                    self._record(name, {step: token})
                waiting[name] = token
            for name, token in waiting.items():
                self._wait_delivered(name, token)
                self._record(name, {f"{step}_done": True})
            done = total - len(todo) + first + len(batch)
            self._say(f"{step}: {done}/{total} sets delivered")
            _, state = self._load()

    def _refresh_one(self, name: str) -> str:
        return self._start(name)

    def _move_one(self, name: str, to_arn: str) -> str | None:
        """Point the set at `to_arn` and rotate it, unless its current
        certificate already comes from there (a resumed run)."""
        self._ports.secrets.tag(name, TAG_CA, to_arn)
        if self._current_ca(name) == to_arn:
            return None
        return self._start(name)

    def _start(self, name: str) -> str:
        try:
            return self._start_now(name)
        except RotationError as exc:
            running = getattr(exc, "token", None)
            if running is None:
                raise
            # A rotation that started before this stage may not carry its
            # change: let it finish, then start one that does.
            self._say(f"{name}: waiting for the rotation already in progress ({running})")
            self._wait_delivered(name, running)
            self._last_start = self._clock()
            return self._ports.trigger.start(name)

    def _wait_delivered(self, name: str, token: str) -> None:
        """Until the token is AWSCURRENT and, for a set that records its
        redeploy, redeployed."""
        give_up = self._clock() + self._timeout
        while True:
            info = self._ports.secrets.describe(name)
            current = info.version_with(CURRENT)
            redeployed = info.tags.get(TAG_REDEPLOYED)
            if current == token and (redeployed is None or redeployed == token):
                return
            if current != token and token not in info.versions:
                raise CaRotationError(f"{name}: version {token} is gone; resume with certrotor ca rotate")
            if self._clock() >= give_up:
                pending = pending_version(info.versions)
                raise CaRotationError(
                    f"{name}: rotation {token} not delivered within {self._timeout:.0f}s "
                    f"(current {current}, pending {pending}); fix it and resume with certrotor ca rotate"
                )
            self._sleep(self._poll)

    def _current_ca(self, name: str) -> str | None:
        try:
            return Manifest.from_json(self._ports.secrets.get(name, stage=CURRENT).value).ca
        except NotIssuedError:
            return None
        except IntegrityError as exc:
            raise CaRotationError(f"{name}: {exc}") from None

    def _record(self, name: str, fields: Mapping[str, Any]) -> None:
        _, state = self._load()
        state["sets"][name] = {**state["sets"].get(name, {}), **fields}
        self._save(state)

    def _check_paused(self) -> None:
        state = self._ports.trust.load().ca_rotation or {}
        if state.get("paused"):
            raise Paused(f"CA rotation paused at stage {state.get('stage')}; resume with certrotor ca rotate")


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(state)
    copied["sets"] = {k: dict(v) for k, v in dict(state.get("sets", {})).items()}
    return copied
