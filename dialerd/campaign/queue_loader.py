"""Inbound queue files -> validated ``Queue`` models, checked against the
loaded campaigns.

A queue is only as good as what it points at: an agent who is in no campaign
can never log in to answer it, a callback campaign that does not exist books
callbacks nobody dials, and a DID in two queues sends a caller to whichever
one the dialplan reads first. Those are checked here, where the campaigns
are already loaded, with the same file:line: field: errors as everything
else (the campaign loader's machinery). The arrow points one way: the
campaign loader knows nothing of queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dialerd.campaign.loader import ConfigError, campaign_files, load_yaml_model, locate
from dialerd.campaign.model import Campaign
from dialerd.campaign.queues import Action, Fallback, Queue


@dataclass
class QueuesLoaded:
    """Every queue of a directory and what is wrong with the others.

    An ``error`` refuses its whole file; a ``warning`` is printed and the
    queue kept (both name file, line and field)."""

    queues: dict[str, Queue] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)


def load_queue_file(path: str | Path) -> Queue:
    """One queue file, alone (no cross-checks); raises :class:`ConfigError`."""
    queue, _ = load_yaml_model(path, Queue)
    return queue


def _at(root: yaml.Node, file: str, message: str, *loc: int | str) -> ConfigError:
    line, fld = locate(root, loc)
    return ConfigError(file, line, fld, message)


def _fallback_findings(
    q: Queue, root: yaml.Node, file: str, campaigns: Mapping[str, Campaign], queue_names: set[str]
) -> tuple[list[ConfigError], list[ConfigError]]:
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for key in ("after_max_wait", "no_agents"):
        fb: Fallback = getattr(q, key)
        if fb.action is not Action.CALLBACK or fb.callback_campaign is None:
            continue
        name = fb.callback_campaign
        # point at the key the supervisor wrote: the action's own, else the queue's
        own = _has(root, key, "callback_campaign")
        loc: tuple[str, ...] = (key, "callback_campaign") if own else ("callback_campaign",)
        c = campaigns.get(name)
        if c is None:
            why = (
                f"{name!r} is an inbound queue; callbacks are dialed by an outbound campaign"
                if name in queue_names
                else f"no outbound campaign named {name!r} is loaded "
                f"({', '.join(sorted(campaigns)) or 'none'})"
            )
            errors.append(_at(root, file, f"{why} (used by {key})", *loc))
        elif not c.enabled:
            warnings.append(
                _at(
                    root,
                    file,
                    f"campaign {name!r} is disabled: callbacks booked by {key} wait until "
                    "it is enabled",
                    *loc,
                )
            )
    # the same key reported twice (both fallbacks use the queue's default) says it once
    return _dedupe(errors), _dedupe(warnings)


def _has(root: yaml.Node, *path: str) -> bool:
    node: yaml.Node | None = root
    for step in path:
        if not isinstance(node, yaml.MappingNode):
            return False
        node = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step),
            None,
        )
    return node is not None


def _dedupe(items: list[ConfigError]) -> list[ConfigError]:
    seen: set[tuple[int | None, str | None]] = set()
    out: list[ConfigError] = []
    for e in items:
        if (e.line, e.field) not in seen:
            seen.add((e.line, e.field))
            out.append(e)
    return out


def _serving_findings(
    q: Queue, root: yaml.Node, file: str, campaigns: Mapping[str, Campaign]
) -> tuple[list[ConfigError], list[ConfigError]]:
    """Agents log in through a campaign (their room, their state), so an
    agent in no campaign could never be ready to answer."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for i, name in enumerate(q.campaigns):
        c = campaigns.get(name)
        if c is None:
            known = ", ".join(sorted(campaigns)) or "none"
            errors.append(
                _at(root, file, f"no campaign named {name!r} is loaded ({known})", "campaigns", i)
            )
        elif not c.enabled:
            warnings.append(
                _at(
                    root,
                    file,
                    f"campaign {name!r} is disabled: its agents do not answer this queue",
                    "campaigns",
                    i,
                )
            )
    homes: dict[str, list[Campaign]] = {}
    for c in campaigns.values():
        for a in c.agents:
            homes.setdefault(a, []).append(c)
    for i, agent in enumerate(q.agents):
        found = homes.get(agent)
        if not found:
            errors.append(
                _at(
                    root,
                    file,
                    f"agent {agent} is in no loaded campaign: an agent logs in through "
                    "a campaign, so could never answer",
                    "agents",
                    i,
                )
            )
        elif not any(c.enabled for c in found):
            names = ", ".join(sorted(c.name for c in found))
            warnings.append(
                _at(
                    root,
                    file,
                    f"agent {agent} is only in disabled campaign(s) ({names}): "
                    "cannot log in to answer",
                    "agents",
                    i,
                )
            )
    return errors, warnings


def load_queues_dir(directory: str | Path, campaigns: Mapping[str, Campaign]) -> QueuesLoaded:
    """Every queue of ``directory``, checked against the loaded ``campaigns``.

    No directory is no queues (a dialer that only dials), not an error. As
    with campaigns, a bad file never stops the others, and a file that
    clashes with an earlier one (same name, a DID already taken by an
    enabled queue) is refused whole; "earlier" is file-name order.
    """
    out = QueuesLoaded()
    d = Path(directory)
    if not d.exists():
        return out
    if not d.is_dir():
        out.errors.append(ConfigError(str(d), None, None, "queues_dir is not a directory"))
        return out
    parsed: list[tuple[Path, Queue, yaml.Node]] = []
    for path in campaign_files(d):
        try:
            queue, root = load_yaml_model(path, Queue)
        except ConfigError as exc:
            out.errors.extend(exc.flatten())
            continue
        parsed.append((path, queue, root))
    queue_names = {q.name for _, q, _ in parsed}
    did_owner: dict[str, str] = {}
    for path, q, root in parsed:
        file = str(path)
        errors: list[ConfigError] = []
        if q.name in out.queues:
            errors.append(
                _at(
                    root,
                    file,
                    f"queue {q.name!r} is already defined in {out.sources[q.name]}",
                    "name",
                )
            )
        if q.enabled:
            for i, did in enumerate(q.dids):
                owner = did_owner.get(did)
                if owner is not None:
                    errors.append(
                        _at(
                            root,
                            file,
                            f"{did} is also a DID of enabled queue {owner!r} "
                            f"({out.sources[owner]}); a number reaches one queue",
                            "dids",
                            i,
                        )
                    )
        serve_errors, serve_warnings = _serving_findings(q, root, file, campaigns)
        fb_errors, fb_warnings = _fallback_findings(q, root, file, campaigns, queue_names)
        errors += serve_errors + fb_errors
        if errors:
            out.errors.extend(sorted(errors, key=lambda e: e.line or 0))
            continue
        out.warnings.extend(sorted(serve_warnings + fb_warnings, key=lambda e: e.line or 0))
        out.queues[q.name] = q
        out.sources[q.name] = path
        if q.enabled:
            for did in q.dids:
                did_owner[did] = q.name
    return out


def describe(e: ConfigError, level: str) -> str:
    """A finding as ``file:line: field: level: message``."""
    return str(ConfigError(e.file, e.line, e.field, f"{level}: {e.message}"))
