"""Which backend and model a `model` string means: model_map, routes, backend prefixes, vendor prefixes,
other backends, and "not found" only when every catalog looked at is known."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.routing.catalog import ModelCatalog
from addons.routing.models import EmptyRoute, ModelMap, ModelNotFound, Target, resolve
from addons.stores.base import Route

G, OR = "gemini", "openrouter"


def catalog(gemini: list[str] | None = None, openrouter: list[str] | None = None) -> ModelCatalog:
    cat = ModelCatalog((OR, G))
    for backend, models in ((G, gemini), (OR, openrouter)):
        if models is not None:
            cat.set_models(backend, models)
    return cat


CAT = catalog(["gemini-2.5-flash", "gemini-2.5-pro"], ["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"])


def go(
    asked: str,
    *,
    mapping: dict[str, str] | None = None,
    session_model: str | None = None,
    backend: str = OR,
    routes: dict[str, Route] | None = None,
    cat: ModelCatalog = CAT,
) -> Target:
    return resolve(
        asked, session_model=session_model, backend=backend, routes=routes or {}, catalog=cat,
        model_map=ModelMap.parse(mapping or {}),
    )  # fmt: skip


def test_listed_bare_id_on_the_default_backend() -> None:
    assert go("openai/gpt-4o-mini").elements == ((OR, "openai/gpt-4o-mini"),)


def test_vendor_prefix_found_for_a_bare_name() -> None:
    # What tools hard-wired to OpenAI send, on a backend that lists it under the vendor's prefix.
    assert go("gpt-4o-mini").elements == ((OR, "openai/gpt-4o-mini"),)
    assert go("GPT-4o-mini").elements == ((OR, "openai/gpt-4o-mini"),)


def test_bare_name_listed_only_by_another_backend() -> None:
    assert go("gemini-2.5-pro").elements == ((G, "gemini-2.5-pro"),)


def test_unknown_everywhere_is_not_found_and_the_message_names_model_map() -> None:
    with pytest.raises(ModelNotFound) as e:
        go("claude-opus-9")
    assert "claude-opus-9" in e.value.message() and "model_map" in e.value.message()


def test_model_map_first_match_in_file_order_wins() -> None:
    mapping = {"claude-opus-*": "gemini:gemini-2.5-pro", "claude-*": "gemini:gemini-2.5-flash"}
    t = go("claude-opus-4-1", mapping=mapping)
    assert t.elements == ((G, "gemini-2.5-pro"),) and t.mapped == "gemini:gemini-2.5-pro"
    assert go("claude-sonnet-4", mapping=mapping).elements == ((G, "gemini-2.5-flash"),)


def test_model_map_to_a_route_and_a_mapped_unknown_names_both() -> None:
    routes = {"fast": Route("fast", "m", [(G, "gemini-2.5-flash"), (OR, "openai/gpt-4o-mini")])}
    t = go("gpt-4o", mapping={"gpt-4o": "fast"}, routes=routes)
    assert t.route == "fast" and t.policy == "m" and len(t.elements) == 2
    with pytest.raises(ModelNotFound) as e:
        go("gpt-4o", mapping={"gpt-4o": "nothing-like-it"})
    assert "gpt-4o" in e.value.message() and "nothing-like-it" in e.value.message()


def test_session_model_overrides_the_map() -> None:
    t = go("claude-x", mapping={"claude-*": "gemini:gemini-2.5-pro"}, session_model="gemini:gemini-2.5-flash")
    assert t.elements == ((G, "gemini-2.5-flash"),) and t.mapped is None


def test_explicit_backend_prefix_is_taken_at_its_word() -> None:
    # The backend itself answers for ids it does not know (its own 404, with its own wording).
    assert go("gemini:gemini-9-ultra").elements == ((G, "gemini-9-ultra"),)


def test_unknown_catalog_passes_the_name_unchecked() -> None:
    pending = catalog(None, None)
    assert go("whatever-model", cat=pending).elements == ((OR, "whatever-model"),)
    failed = catalog(["gemini-2.5-flash"], None)
    failed.set_unavailable(OR, "down")
    assert go("whatever-model", cat=failed).elements == ((OR, "whatever-model"),)


def test_empty_route_is_an_error() -> None:
    with pytest.raises(EmptyRoute):
        go("r", routes={"r": Route("r")})


def test_bad_model_map_target() -> None:
    with pytest.raises(ValueError, match="model_map"):
        ModelMap.parse({"x": ""})


@given(st.text(min_size=1, max_size=40))
def test_any_name_resolves_or_is_not_found(name: str) -> None:
    try:
        t = go(name)
    except ModelNotFound as e:
        assert e.asked == name
    else:
        assert t.elements and all(b in (G, OR) for b, _ in t.elements)
