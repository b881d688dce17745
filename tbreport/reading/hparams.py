"""Hyperparameters: the ``hparams`` and ``hparam_records`` frames of a `ReadResult`.

Three sources, merged per logical run (later wins): HuggingFace's ``args/text_summary`` JSON,
Lightning's ``hparams.yaml`` (loaded without constructing any Python object), and every
hparams-plugin summary (``session_start_info``, ``session_end_info``, ``experiment``).
"""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple, cast

import pandas as pd

from tbreport.model import ReadWarning
from tbreport.reading.rundata import RunData

HPARAMS_TAG_PREFIX = "_hparams_/"
HF_ARGS_TAG = "args/text_summary"
HPARAM_RECORD_COLUMNS = ["run", "source_run", "source", "kind", "name", "value"]
# A Lightning hparams.yaml is a few kilobytes; these bounds only stop hostile files.
_MAX_YAML_BYTES = 1 << 20
_MAX_YAML_ALIASES = 20


def _plain(value: Any) -> Any:
    """A JSON/YAML value as a table cell: scalars as they are, containers as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, prefix=f"{name}/"))
        else:
            flat[name] = _plain(value)
    return flat


def _struct_value(value: Any) -> Any:  # a protobuf Value
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind in ("list_value", "struct_value"):
        from google.protobuf.json_format import MessageToDict

        return _plain(MessageToDict(value))
    return None


def _enum_name(enum: Any, value: int) -> str:
    """The name of an enum value; event files may hold numbers this TensorBoard does not know."""
    try:
        name: str = enum.Name(value)
        return name
    except ValueError:
        return f"UNKNOWN_{value}"


def _hparams_plugin_records(content: bytes) -> list[tuple[str, str, Any]]:
    """(kind, name, value) records from one serialised ``HParamsPluginData``."""
    from google.protobuf.message import DecodeError
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData()
    try:
        data.ParseFromString(content)
    except DecodeError:
        return [("invalid", "", None)]
    which = data.WhichOneof("data")
    records: list[tuple[str, str, Any]] = []
    if which == "session_start_info":
        info = data.session_start_info
        for name in sorted(info.hparams):
            records.append(("hparam", name, _struct_value(info.hparams[name])))
        if info.group_name:
            records.append(("group_name", "group_name", info.group_name))
        if info.start_time_secs:
            records.append(("start_time", "start_time_secs", info.start_time_secs))
    elif which == "session_end_info":
        info = data.session_end_info
        records.append(("status", "status", _enum_name(api_pb2.Status, info.status)))
        if info.end_time_secs:
            records.append(("end_time", "end_time_secs", info.end_time_secs))
    elif which == "experiment":
        for metric in data.experiment.metric_infos:
            name = (
                metric.name.tag
                if not metric.name.group
                else f"{metric.name.group}/{metric.name.tag}"
            )
            records.append(("metric", name, metric.display_name or None))
        for hparam in data.experiment.hparam_infos:
            declared = _enum_name(api_pb2.DataType, hparam.type) if hparam.type else None
            records.append(("hparam_declared", hparam.name, declared))
    return records


def load_hparams_yaml(path: str) -> Any:
    """Load a Lightning ``hparams.yaml`` safely.

    Lightning writes Python-specific tags (``!!python/tuple``, ``!!python/object``...), read
    as plain lists, mappings or strings; nothing is ever constructed or executed.
    """
    import yaml

    class _PlainLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            # A few aliases are legitimate; thousands are a "billion laughs" expansion bomb.
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > _MAX_YAML_ALIASES:
                    raise yaml.YAMLError("too many aliases (refusing a possible alias bomb)")
            return super().compose_node(parent, index)

    def _plain_node(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(cast(yaml.ScalarNode, node))  # the one kind left

    _PlainLoader.add_multi_constructor("", _plain_node)
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(_MAX_YAML_BYTES + 1)
    if len(text) > _MAX_YAML_BYTES:
        raise ValueError(f"larger than {_MAX_YAML_BYTES // 1024} KiB")
    try:
        return yaml.load(text, Loader=_PlainLoader)  # SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


class HparamRecord(NamedTuple):
    """One row of ``hparam_records`` (the columns of `HPARAM_RECORD_COLUMNS`)."""

    run: str  # the logical run
    source_run: str
    source: str
    kind: str
    name: str
    value: Any


def collect_hparam_records(
    run_data: list[RunData], runs: pd.DataFrame, text: pd.DataFrame
) -> tuple[list[HparamRecord], list[ReadWarning]]:
    """Every hyperparameter record of ``run_data`` (values as their source wrote them, before
    any table turns a column into numbers) and the warnings about unreadable ones."""
    warnings: list[ReadWarning] = []
    with_hparams = [rd for rd in run_data if rd.ref.hparams_yaml or rd.hparam_contents]
    hf_args = text[text["tag"] == HF_ARGS_TAG] if not text.empty else text
    if not with_hparams and hf_args.empty:
        return [], warnings  # most sweeps of thousands of runs: nothing to look up
    logical_of = dict(zip(runs["run"].tolist(), runs["logical_run"].tolist(), strict=True))
    records = _hf_args_records(hf_args, logical_of)
    for rd in with_hparams:
        records += _run_records(rd, logical_of, warnings)
    return records, warnings


def records_frame(records: list[HparamRecord]) -> pd.DataFrame:
    """The long ``hparam_records`` frame of ``records``."""
    if not records:  # built once: most reads have none, and building costs a millisecond
        return _no_records().copy()
    return _records_frame(records)


@functools.cache
def _no_records() -> pd.DataFrame:
    return _records_frame([])


def _records_frame(records: list[HparamRecord]) -> pd.DataFrame:
    hparam_records = pd.DataFrame.from_records(records, columns=HPARAM_RECORD_COLUMNS)
    for column in ("run", "source_run", "source", "kind", "name"):
        hparam_records[column] = hparam_records[column].astype(object)
    hparam_records["value"] = hparam_records["value"].astype(object)
    return hparam_records


def _hf_args_records(hf_args: pd.DataFrame, logical_of: dict[str, str]) -> list[HparamRecord]:
    """The hyperparameters of HF Trainer's ``args/text_summary`` JSON (rows ``hf_args`` of
    the text frame)."""
    records: list[HparamRecord] = []
    row: Any  # a row of the text frame
    for row in hf_args.itertuples(index=False):
        run = str(row.run)
        try:
            args = json.loads(row.text)
            flat = _flatten(args) if isinstance(args, dict) else {}
        except (TypeError, ValueError, RecursionError):  # not JSON, or nested beyond reason
            continue
        for name, value in flat.items():
            records.append(
                HparamRecord(logical_of.get(run, run), run, "hf-args", "hparam", name, value)
            )
    return records


def _run_records(
    rd: RunData, logical_of: dict[str, str], warnings: list[ReadWarning]
) -> list[HparamRecord]:
    """A run directory's Lightning ``hparams.yaml`` and hparams-plugin records."""
    records: list[HparamRecord] = []
    run = rd.ref.name
    logical = logical_of.get(run, run)
    if rd.ref.hparams_yaml:
        try:
            loaded = load_hparams_yaml(rd.ref.hparams_yaml)
            flat = _flatten(loaded) if isinstance(loaded, dict) else {}
        except (OSError, ValueError, RecursionError) as exc:
            warnings.append(
                ReadWarning(
                    kind="hparams-yaml",
                    path=rd.ref.hparams_yaml,
                    run=run,
                    message=f"could not read hparams.yaml ({type(exc).__name__}); skipped",
                )
            )
            flat = {}
        for name, value in flat.items():
            records.append(HparamRecord(logical, run, "hparams.yaml", "hparam", name, value))
    for tag, content in rd.hparam_contents:
        for kind, name, value in _hparams_plugin_records(content):
            if kind == "invalid":
                warnings.append(
                    ReadWarning(
                        kind="hparams-undecodable",
                        path=rd.ref.directory,
                        run=run,
                        message=f"hparams data of tag {tag!r} could not be decoded; skipped",
                    )
                )
                continue
            source = tag[len(HPARAMS_TAG_PREFIX) :] if tag.startswith(HPARAMS_TAG_PREFIX) else tag
            records.append(HparamRecord(logical, run, source, kind, name, value))
    return records


# Later sources win: HF args, then hparams.yaml, then the hparams plugin.
_SOURCE_RANK = {"hf-args": 0, "hparams.yaml": 1}
_INT64 = range(-(1 << 63), 1 << 63)


def wide_table(records: list[HparamRecord], runs: pd.DataFrame) -> pd.DataFrame:
    """One row per logical run (of the ``logical_run`` column of ``runs``), one column per
    hyperparameter: HF args, then hparams.yaml, then the hparams plugin (later sources win);
    numeric columns become numbers."""
    wide: dict[str, dict[str, Any]] = {}
    columns: list[str] = []
    hp_rows = [r for r in records if r.kind == "hparam"]
    if not hp_rows:
        return pd.DataFrame([], columns=["run"])
    hp_rows.sort(key=lambda r: _SOURCE_RANK.get(r.source, 2))  # stable: later sources win
    for logical, _, _, _, name, value in hp_rows:
        if name not in columns:
            columns.append(name)
        wide.setdefault(logical, {})[name] = value
    logical_order = list(dict.fromkeys(runs["logical_run"].tolist()))
    table = pd.DataFrame(
        [{"run": run, **wide.get(run, {})} for run in logical_order if run in wide],
        columns=["run", *columns],
    )
    for column in columns:
        values = table[column]
        if values.map(
            lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None
        ).all():
            table[column] = pd.to_numeric(values, errors="coerce")
    return table


def single_run_row(records: list[HparamRecord]) -> tuple[str, dict[str, Any]] | None:
    """The one row `wide_table` makes of the hyperparameters of a single logical run, without
    building it: ``(logical run, name -> value)``, columns in the table's order, values as the
    table's cells hold them (a number column of one value is that value).

    Returns:
        None when there is not exactly one logical run with hyperparameters, or when a cell
        could come out of the table changed (an int beyond int64, a name clashing with the
        ``run`` column, text the table cannot hold): build the table then.
    """
    hp_rows = [r for r in records if r.kind == "hparam"]
    if not hp_rows or any(r.run != hp_rows[0].run for r in hp_rows):
        return None
    if not _plain_text(hp_rows[0].run):
        return None
    hp_rows.sort(key=lambda r: _SOURCE_RANK.get(r.source, 2))  # stable: later sources win
    row: dict[str, Any] = {}
    for record in hp_rows:
        if not _same_in_table(record.name, record.value):
            return None
        row[record.name] = record.value
    return hp_rows[0].run, row


def _same_in_table(name: Any, value: Any) -> bool:
    """Whether a one-row table keeps ``value`` as it is in a column named ``name``."""
    if type(name) is not str or name == "run" or not _plain_text(name):
        return False
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return True
    if kind is int:
        return value in _INT64
    return kind is str and _plain_text(value)


def _plain_text(text: Any) -> bool:
    """Text a table's string column holds (lone surrogates do not encode)."""
    if type(text) is not str:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
