"""OpenAI `tools` and `tool_choice` -> Gemini functionDeclarations and functionCallingConfig."""

from __future__ import annotations

from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.schema import clean_schema, is_free_form


def function_declarations(tools: list[Any]) -> list[dict[str, Any]]:
    decls: list[dict[str, Any]] = []
    for k, tool in enumerate(tools):
        where = f"tools[{k}]"
        if not isinstance(tool, dict):
            raise TranslationError(f"{where} must be an object", param=where)
        if tool.get("type", "function") != "function":
            raise TranslationError(
                f"{where}: tool type {tool.get('type')!r} is not supported; Gemini takes function tools only",
                param=f"{where}.type",
            )
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError(f"{where}: function.name is required", param=f"{where}.function.name")
        decl: dict[str, Any] = {"name": name}
        if isinstance(fn.get("description"), str) and fn["description"]:
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if params is not None:
            cleaned = clean_schema(params, where=f"{where}.function.parameters")
            # An object without properties is a 400 ("properties: should be non-empty for OBJECT type");
            # a function without arguments simply has no `parameters`.
            if not is_free_form(cleaned):
                decl["parameters"] = cleaned
        decls.append(decl)
    return decls


def tool_config(choice: Any, decls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """functionCallingConfig for `tool_choice`; an allowed_tools "auto" choice narrows `decls` in place."""
    if choice is None:
        return None
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str):
        if choice not in modes:
            raise TranslationError(
                f"tool_choice {choice!r} is not one of none, auto, required", param="tool_choice"
            )
        return {"mode": modes[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice.function.name is required", param="tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [
            t["function"]["name"]
            for t in allowed.get("tools") or []
            if isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        if allowed.get("mode") == "required":
            return {"mode": "ANY", "allowedFunctionNames": names}
        # allowedFunctionNames is only valid with ANY; for auto, offer just the allowed declarations.
        decls[:] = [d for d in decls if d["name"] in names]
        return {"mode": "AUTO"}
    raise TranslationError("unsupported tool_choice value", param="tool_choice")
