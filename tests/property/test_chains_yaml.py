"""Whole chains.yaml documents: random mutations of the shipped file either still load or
fail with a ConfigError that names the broken location; the CLI then exits 2."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ctrip_cli.config import load_chains
from ctrip_cli.errors import ConfigError
from tests.property._support import assert_clean_usage_error, row_counts

SHIPPED_TEXT = (
    Path(__file__).resolve().parents[2] / "ctrip_cli" / "default_chains.yaml"
).read_text()
SHIPPED = yaml.safe_load(SHIPPED_TEXT)
CHAINS = sorted(SHIPPED["chains"])
KEYS = sorted({k for c in SHIPPED["chains"].values() for k in c})
REQUIRED = ["chain_id", "rpc_urls", "native"]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
bad_urls = st.one_of(
    st.sampled_from(["ftp://x", "127.0.0.1:8545", "", "http//x", "file:///etc/passwd"]),
    st.text(max_size=30).filter(
        lambda u: not u.startswith(("http://", "https://", "ws"))
    ),
)


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(document text, location the error must name, must it fail?)."""
    doc: dict[str, Any] = copy.deepcopy(SHIPPED)
    chain = draw(st.sampled_from(CHAINS))
    cfg = doc["chains"][chain]
    kind = draw(
        st.sampled_from(
            [
                "junk",
                "drop",
                "chain_id",
                "url",
                "non_mapping",
                "extra",
                "token",
                "symbol",
                "env",
                "garbage",
            ]
        )
    )
    loc, must_fail = f"chains.{chain}", True
    if kind == "junk":
        key = draw(st.sampled_from(KEYS))
        cfg[key] = draw(junk)
        loc, must_fail = f"chains.{chain}.{key}", False
    elif kind == "drop":
        key = draw(st.sampled_from(REQUIRED))
        del cfg[key]
        loc = f"chains.{chain}.{key}"
    elif kind == "chain_id":
        cfg["chain_id"] = draw(
            st.one_of(
                st.integers(max_value=0), st.text(max_size=8), st.none(), st.lists(junk)
            )
        )
        loc = f"chains.{chain}.chain_id"
    elif kind == "url":
        urls = list(cfg["rpc_urls"])
        urls[draw(st.integers(0, len(urls) - 1))] = draw(bad_urls)
        cfg["rpc_urls"] = urls
        loc = f"chains.{chain}.rpc_urls"
    elif kind == "non_mapping":
        doc["chains"][chain] = draw(junk.filter(lambda v: not isinstance(v, dict)))
    elif kind == "extra":
        cfg[draw(st.sampled_from(["rpc_url", "confirmation", "chainid", "Tokens"]))] = 1
    elif kind == "token":
        symbol = draw(st.sampled_from(sorted(cfg.get("tokens") or {"USDT": None})))
        cfg.setdefault("tokens", {})[symbol] = draw(junk)
        loc, must_fail = f"chains.{chain}.tokens.{symbol}", False
    elif kind == "symbol":
        cfg["tokens"] = {
            draw(st.one_of(st.integers(), st.text(max_size=20))): {
                "address": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
                "decimals": 6,
            }
        }
        must_fail = False
    elif kind == "env":
        cfg["rpc_urls"] = ["${CTRIP_CHAOS_UNSET_VARIABLE}"]
        loc = f"chains.{chain}.rpc_urls[0]: environment variable"
    else:
        return draw(_garbage_text()), "", True
    return yaml.safe_dump(doc), loc, must_fail


def _garbage_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=60),
        st.sampled_from(
            ["chains: [1", "chains:\n  - a\n", "{", "chains: {local: 3}", "- 1"]
        ),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        st.just(SHIPPED_TEXT[: len(SHIPPED_TEXT) // 2] + "\n  : ]"),
    )


@given(case=broken())
def test_mutated_chains_yaml_loads_or_names_the_location(tmp_path_factory, case):
    text, loc, must_fail = case
    path = tmp_path_factory.mktemp("chains") / "chains.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_chains(path, {})
    except ConfigError as exc:
        message = str(exc)
        assert loc in message or (
            not loc and ("chains" in message or "YAML" in message)
        )
        return
    assert not must_fail, f"accepted a broken document ({loc})"


@given(case=broken())
def test_cli_exits_2_on_any_broken_chains_yaml(ctrip, cli_env, tmp_path_factory, case):
    text, loc, _ = case
    path = tmp_path_factory.mktemp("cli") / "chains.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_chains(path, {})
    except ConfigError:
        pass
    else:
        return  # a harmless mutation; the CLI run is covered elsewhere
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = _create_with(ctrip, path)
    assert_clean_usage_error(result, loc)
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before


def _create_with(ctrip, path: Path):
    return ctrip(
        "--chains",
        str(path),
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1",
    )


@pytest.mark.parametrize("name", ["Local", "has space", "x" * 40, "-dash", "ümlaut"])
def test_bad_chain_names_are_refused(tmp_path, name):
    doc = copy.deepcopy(SHIPPED)
    doc["chains"][name] = doc["chains"].pop("local")
    path = tmp_path / "chains.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="chain names are lowercase"):
        load_chains(path, {})


@st.composite
def hostile(draw: st.DrawFn) -> tuple[bytes, str]:
    """(document bytes, a text the refusal must contain) for the review's attacks."""
    kind = draw(st.sampled_from(["bomb", "deep", "duplicate", "bytes", "number"]))
    if kind == "bomb":
        levels, width = draw(st.integers(2, 9)), draw(st.integers(2, 12))
        lines = ["a0: &a0 [" + ",".join(['"x"'] * width) + "]"]
        lines += [
            f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]"
            for i in range(1, levels)
        ]
        text = "\n".join(lines) + f"\nchains: {{local: *a{levels - 1}}}\n"
        sizes = [1 + width]  # nodes each anchor stands for, aliases expanded
        for _ in range(1, levels):
            sizes.append(1 + width * sizes[-1])
        document = 1 + sum(1 + n for n in sizes) + 3 + sizes[-1]
        big = document > 100_000
        return text.encode(), "aliases expand" if big else "chains.local"
    if kind == "deep":
        depth = draw(st.integers(65, 20_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        return f"chains: {opener * depth}{closer * depth}".encode(), "nested deeper"
    if kind == "duplicate":
        chain = draw(st.sampled_from(CHAINS))
        key = draw(st.sampled_from(["chain_id", "rpc_urls", "native", "confirmations"]))
        lines = SHIPPED_TEXT.splitlines()
        at = lines.index(f"  {chain}:") + 1
        lines.insert(at, f"    {key}: 1")
        lines.insert(at, f"    {key}: 1")
        return "\n".join(lines).encode(), "duplicate key"
    if kind == "bytes":
        junk = draw(st.binary(min_size=1, max_size=8).filter(_not_utf8))
        cut = draw(st.integers(0, len(SHIPPED_TEXT)))
        data = SHIPPED_TEXT[:cut].encode() + junk + SHIPPED_TEXT[cut:].encode()
        return data, "not UTF-8"
    chain = draw(st.sampled_from(CHAINS))
    doc: dict[str, Any] = copy.deepcopy(SHIPPED)
    doc["chains"][chain]["block_time_s"] = draw(
        st.sampled_from([float("inf"), float("-inf"), float("nan")])
    )
    return yaml.safe_dump(doc).encode(), f"chains.{chain}.block_time_s"


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@given(case=hostile())
def test_hostile_chains_yaml_is_refused_by_name(tmp_path_factory, case):
    data, needle = case
    path = tmp_path_factory.mktemp("hostile") / "chains.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_chains(path, {})
    assert needle in str(info.value)


@given(case=hostile())
def test_cli_exits_2_on_hostile_chains_yaml(ctrip, cli_env, tmp_path_factory, case):
    data, needle = case
    path = tmp_path_factory.mktemp("hostile-cli") / "chains.yaml"
    path.write_bytes(data)
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = _create_with(ctrip, path)
    assert_clean_usage_error(result, needle)
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before
