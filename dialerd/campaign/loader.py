"""Campaign YAML files -> validated ``Campaign`` models, with errors a person can act on.

A supervisor edits these files by hand at 8 a.m. with agents waiting; an
error that says "validation error" is useless, one that says
``sales.yaml:12: retry.busy.delay_s: ...`` is fixed in seconds. So every
error carries the file, the line and the dotted field path. Lines come from
PyYAML's composed node tree, which keeps the position of every key and value.

The same machinery (:func:`load_yaml_model`) loads ``dialerd.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dialerd.campaign.model import LEGAL_OVERRIDES, TRUNK_RE, Campaign

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """One problem in one configuration file.

    ``line`` is 1-based; None when the problem has no position (unreadable
    file). ``field`` is the dotted path (``retry.busy.delay_s``,
    ``agents[2]``); None for file-level problems (syntax, empty file).
    """

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def __str__(self) -> str:
        return self._format()

    def flatten(self) -> list[ConfigError]:
        """The individual errors (itself, for a single error)."""
        return [self]


class ConfigErrors(ConfigError):
    """Every error found in one file, so one run of ``check-config`` shows them all.

    Subclasses :class:`ConfigError` so callers need catch only one type; its
    own ``line``/``field``/``message`` are those of the first error.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.line, first.field, first.message)

    def _format(self) -> str:
        return "\n".join(ConfigError._format(e) for e in self.errors)

    def flatten(self) -> list[ConfigError]:
        return list(self.errors)


def _raise(errors: list[ConfigError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


# --------------------------------------------------------------------------- YAML


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _compose(text: str, file: str) -> tuple[yaml.Node, Any, list[ConfigError]]:
    """Compose the node tree and construct the data from it with one loader,
    so both views come from the same parse (and SafeLoader's type rules).
    Duplicate keys are returned, not raised, so validation still runs and
    one pass shows every problem of the file."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(file, None, None, "the file is empty")
        duplicates = list(_duplicate_keys(node, file))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else int(mark.line) + 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(file, line, None, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, None, f"YAML error: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return node, data, duplicates


def _duplicate_keys(root: yaml.Node, file: str) -> Iterator[ConfigError]:
    """PyYAML keeps the last of two equal keys without a word; a supervisor
    who wrote ``max_lines`` twice must be told which one is ignored."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # aliases share nodes
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                    continue
                name = str(key.value)
                child = f"{path}.{name}" if path else name
                if name in first_line:
                    yield ConfigError(
                        file, _line(key), child, f"duplicate key (first on line {first_line[name]})"
                    )
                else:
                    first_line[name] = _line(key)
                stack.append((value, child))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, f"{path}[{i}]"))


def _mapping_get(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    # the last occurrence: it is the one PyYAML kept, so the one validated
    for k, v in reversed(node.value):
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def locate(root: yaml.Node, loc: Iterable[int | str]) -> tuple[int, str | None]:
    """Map a pydantic ``loc`` to (line, dotted field path).

    A str step on a node that is not a mapping is a union member tag
    (``constrained-int``, ``list[...]``) that pydantic adds: it is not part
    of what the user wrote, so it is dropped from the path. A key missing
    from a mapping (a required field) points at the line that opened the
    mapping.
    """
    node: yaml.Node | None = root
    line = _line(root)
    parts: list[str] = []
    for step in loc:
        if isinstance(step, int):
            parts.append(f"[{step}]")
            if isinstance(node, yaml.SequenceNode) and 0 <= step < len(node.value):
                node = node.value[step]
                line = _line(node)
            else:
                node = None
            continue
        if node is not None and not isinstance(node, yaml.MappingNode):
            continue  # union tag
        parts.append(f".{step}" if parts else step)
        found = _mapping_get(node, step) if isinstance(node, yaml.MappingNode) else None
        if found is None:
            node = None
        else:
            key, node = found
            line = _line(key)
    return line, "".join(parts) or None


def _clean_message(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required field missing"
    return msg.removeprefix("Value error, ")


@dataclass
class _Located:
    line: int
    field: str | None
    message: str
    type: str
    from_union: bool


def _merge_union(items: list[_Located]) -> list[_Located]:
    """pydantic reports one error per union member (``delay_s: -5`` fails as
    an int *and* as a list). Keep the member errors that are not mere type
    mismatches; if all are, say what the value may be in one message."""
    out: list[_Located] = []
    groups: dict[tuple[int, str | None], list[_Located]] = {}
    for it in items:
        if it.from_union:
            groups.setdefault((it.line, it.field), []).append(it)
        else:
            out.append(it)
    for group in groups.values():
        real = [g for g in group if not g.type.endswith(("_type", "_parsing"))]
        if real:
            out.extend(real)
            continue
        wants = [g.message.split(", ")[0].removeprefix("Input should be ") for g in group]
        msg = "Input should be " + " or ".join(dict.fromkeys(wants))
        out.append(_Located(group[0].line, group[0].field, msg, "union", True))
    out.sort(key=lambda x: x.line)
    return out


def validation_errors(exc: ValidationError, root: yaml.Node, file: str) -> list[ConfigError]:
    """pydantic's errors as :class:`ConfigError` with lines from the node tree."""
    items: list[_Located] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line, field = locate(root, loc)
        path_len = len(field.replace("[", ".").split(".")) if field else 0
        items.append(
            _Located(line, field, _clean_message(dict(err)), err["type"], path_len < len(loc))
        )
    return [ConfigError(file, it.line, it.field, it.message) for it in _merge_union(items)]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from None


def parse_yaml_model(
    text: str, file: str, model: type[M], context: dict[str, Any] | None = None
) -> tuple[M, yaml.Node]:
    """Validate YAML ``text`` as ``model``; also hand back the node tree so
    callers can point at lines for checks that span files."""
    root, data, errors = _compose(text, file)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"
        raise ConfigError(
            file, _line(root), None, f"the top level must be a mapping of keys, not {kind}"
        )
    result: M | None = None
    try:
        result = model.model_validate(data, context=context)
    except ValidationError as exc:
        errors.extend(validation_errors(exc, root, file))
    errors.sort(key=lambda e: e.line or 0)
    _raise(errors)
    assert result is not None
    return result, root


def load_yaml_model(
    path: str | Path, model: type[M], context: dict[str, Any] | None = None
) -> tuple[M, yaml.Node]:
    p = Path(path)
    return parse_yaml_model(_read(p), str(path), model, context)


def load_campaign_file(path: str | Path, site: Site | None = None) -> Campaign:
    """One campaign file, bound to ``site`` if given (:func:`bind_to_site`);
    raises :class:`ConfigError` (or :class:`ConfigErrors`)."""
    campaign, root = load_yaml_model(path, Campaign)
    if site is not None:
        campaign, errors = bind_to_site(campaign, site, root, str(path))
        _raise(errors)
    return campaign


def campaign_files(directory: Path) -> list[Path]:
    """``*.yaml``/``*.yml`` in name order; hidden files (editor droppings) skipped."""
    files = [
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files)


def _key_line(root: yaml.Node, *loc: int | str) -> int:
    return locate(root, loc)[0]


@dataclass(frozen=True, slots=True)
class Site:
    """What the telephony admin owns (dialerd.yaml), not the supervisor who
    edits campaign files: the trunks a campaign may dial through, and the
    legal limits lifted for a campaign.

    Whoever can edit a campaign could otherwise write any channel template
    (``Local/{number}@any-context`` runs any dialplan with the daemon's
    originate right) or switch off the 08:00-21:00 window, the 3 % abandon
    limit or the 15 s ring minimum.
    """

    #: trunk name -> channel template
    trunks: Mapping[str, str] = field(default_factory=dict)
    #: campaign name -> the ``LEGAL_OVERRIDES`` lifted for it
    overrides: Mapping[str, frozenset[str]] = field(default_factory=dict)


def bind_to_site(
    campaign: Campaign, site: Site, root: yaml.Node, file: str
) -> tuple[Campaign, list[ConfigError]]:
    """The campaign with its trunk name replaced by the admin's template and
    the admin's overrides applied; errors name the file, line and field."""
    errors: list[ConfigError] = []
    known = ", ".join(sorted(site.trunks)) or "none: dialerd.yaml has no trunks"
    template = site.trunks.get(campaign.trunk)
    if template is None:
        why = (
            "a channel template is admin-owned: name one of dialerd.yaml's trunks"
            if TRUNK_RE.fullmatch(campaign.trunk)
            else f"no trunk named {campaign.trunk!r} in dialerd.yaml"
        )
        errors.append(ConfigError(file, _key_line(root, "trunk"), "trunk", f"{why} ({known})"))
    comp = campaign.compliance
    for name, fld in LEGAL_OVERRIDES.items():
        if getattr(comp, fld):
            errors.append(
                ConfigError(
                    file,
                    _key_line(root, "compliance", fld),
                    f"compliance.{fld}",
                    "legal overrides are admin-owned: set legal_overrides: "
                    f"{{{campaign.name}: [{name}]}} in dialerd.yaml",
                )
            )
    if errors:
        return campaign, errors
    lifted = site.overrides.get(campaign.name, frozenset())
    new_comp = comp.model_copy(update={LEGAL_OVERRIDES[n]: True for n in lifted})
    assert template is not None
    return campaign.model_copy(update={"trunk": template, "compliance": new_comp}), []


def load_campaigns_dir(
    directory: str | Path, site: Site | None = None
) -> tuple[dict[str, Campaign], list[ConfigError]]:
    """Every campaign of a directory, and every error found."""
    campaigns, _sources, errors = load_campaigns_with_sources(directory, site)
    return campaigns, errors


def load_campaigns_with_sources(
    directory: str | Path, site: Site | None = None
) -> tuple[dict[str, Campaign], dict[str, Path], list[ConfigError]]:
    """Every campaign of a directory, the file each came from, every error.

    A bad file does not stop the others: one typo must not take every
    campaign of the call centre off the air. A file that clashes with an
    earlier one (same name, or an agent already in another enabled
    campaign) is refused as a whole rather than half-applied; "earlier" is
    file-name order, so the outcome does not depend on the file system.

    With ``site`` (the daemon, ``check-config``) every campaign is bound to
    it (:func:`bind_to_site`); without it, trunks stay as written.
    """
    d = Path(directory)
    if not d.is_dir():
        return {}, {}, [ConfigError(str(directory), None, None, "campaigns directory not found")]
    campaigns: dict[str, Campaign] = {}
    source: dict[str, str] = {}
    agent_owner: dict[str, str] = {}
    errors: list[ConfigError] = []
    for path in campaign_files(d):
        file = str(path)
        try:
            campaign, root = load_yaml_model(path, Campaign)
        except ConfigError as exc:
            errors.extend(exc.flatten())
            continue
        if site is not None:
            campaign, site_errors = bind_to_site(campaign, site, root, file)
            if site_errors:
                errors.extend(site_errors)
                continue
        clashes: list[ConfigError] = []
        if campaign.name in campaigns:
            clashes.append(
                ConfigError(
                    file,
                    _key_line(root, "name"),
                    "name",
                    f"campaign {campaign.name!r} is already defined in {source[campaign.name]}",
                )
            )
        if campaign.enabled:
            for i, agent in enumerate(campaign.agents):
                owner = agent_owner.get(agent)
                if owner is not None:
                    clashes.append(
                        ConfigError(
                            file,
                            _key_line(root, "agents", i),
                            f"agents[{i}]",
                            f"agent {agent} is also in enabled campaign {owner!r} "
                            f"({source[owner]}); an agent belongs to one campaign at a time",
                        )
                    )
        if clashes:
            errors.extend(clashes)
            continue
        campaigns[campaign.name] = campaign
        source[campaign.name] = file
        if campaign.enabled:
            for agent in campaign.agents:
                agent_owner[agent] = campaign.name
    return campaigns, {n: Path(f) for n, f in source.items()}, errors
