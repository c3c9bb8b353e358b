"""Lists what a schema lacks or changes relative to the API contract that clients rely on."""

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    ValueNode,
    build_schema,
    is_introspection_type,
    is_non_null_type,
    is_specified_scalar_type,
    print_ast,
    value_from_ast,
)

_KINDS: tuple[tuple[type[GraphQLNamedType], str], ...] = (
    (GraphQLObjectType, "an object type"),
    (GraphQLInterfaceType, "an interface"),
    (GraphQLUnionType, "a union"),
    (GraphQLEnumType, "an enum"),
    (GraphQLInputObjectType, "an input type"),
    (GraphQLScalarType, "a scalar"),
)


def contract_differences(schema_sdl: str, contract_sdl: str) -> list[str]:
    """Everything the contract has that the schema lacks or types differently, one line each.

    The schema may add types, fields, enum values, optional arguments and optional input fields;
    anything else that differs is reported. Each line starts with the contract's type name.
    """
    schema = build_schema(schema_sdl)
    contract = build_schema(contract_sdl)
    differences: list[str] = []
    for name, expected in contract.type_map.items():
        if is_introspection_type(expected) or is_specified_scalar_type(expected):
            continue
        actual = _counterpart(name, schema, contract)
        if actual is None:
            differences.append(f"{name}: type missing")
            continue
        if _kind(actual) != _kind(expected):
            differences.append(
                f"{name}: is {_kind(actual)} in the schema, {_kind(expected)} in the contract"
            )
            continue
        # The kinds match, so checking `actual` too only narrows its type.
        if isinstance(expected, GraphQLObjectType | GraphQLInterfaceType) and isinstance(
            actual, GraphQLObjectType | GraphQLInterfaceType
        ):
            differences.extend(_compare_fields(name, actual, expected))
        elif isinstance(expected, GraphQLInputObjectType) and isinstance(
            actual, GraphQLInputObjectType
        ):
            differences.extend(_compare_input_fields(name, actual, expected))
        elif isinstance(expected, GraphQLEnumType) and isinstance(actual, GraphQLEnumType):
            differences.extend(
                f"{name}.{value}: enum value missing"
                for value in expected.values
                if value not in actual.values
            )
        elif isinstance(expected, GraphQLUnionType) and isinstance(actual, GraphQLUnionType):
            members = {member.name for member in actual.types}
            differences.extend(
                f"{name}: union lacks member {member.name}"
                for member in expected.types
                if member.name not in members
            )
    return differences


def _counterpart(
    name: str, schema: GraphQLSchema, contract: GraphQLSchema
) -> GraphQLNamedType | None:
    # Root types are matched by operation, so a schema may name its Query class differently.
    for operation in ("query_type", "mutation_type", "subscription_type"):
        contract_root = getattr(contract, operation)
        schema_root = getattr(schema, operation)
        if contract_root is not None and contract_root.name == name and schema_root is not None:
            return schema_root
    return schema.type_map.get(name)


def _kind(named_type: GraphQLNamedType) -> str:
    for cls, kind in _KINDS:
        if isinstance(named_type, cls):
            return kind
    return type(named_type).__name__


def _compare_fields(
    type_name: str,
    actual: GraphQLObjectType | GraphQLInterfaceType,
    expected: GraphQLObjectType | GraphQLInterfaceType,
) -> list[str]:
    differences: list[str] = []
    implemented = {interface.name for interface in actual.interfaces}
    differences.extend(
        f"{type_name}: does not implement {interface.name}"
        for interface in expected.interfaces
        if interface.name not in implemented
    )
    for field_name, expected_field in expected.fields.items():
        where = f"{type_name}.{field_name}"
        actual_field = actual.fields.get(field_name)
        if actual_field is None:
            differences.append(f"{where}: field missing")
            continue
        if str(actual_field.type) != str(expected_field.type):
            differences.append(
                f"{where}: type is {actual_field.type}, contract says {expected_field.type}"
            )
        for arg_name, expected_arg in expected_field.args.items():
            actual_arg = actual_field.args.get(arg_name)
            if actual_arg is None:
                differences.append(f"{where}({arg_name}): argument missing")
            else:
                differences.extend(_compare_value(f"{where}({arg_name})", actual_arg, expected_arg))
        # A client's existing query must stay valid, so only optional arguments may be added.
        differences.extend(
            f"{where}({arg_name}): new argument must be optional, is {arg.type} without a default"
            for arg_name, arg in actual_field.args.items()
            if arg_name not in expected_field.args and _is_required(arg)
        )
    return differences


def _compare_input_fields(
    type_name: str, actual: GraphQLInputObjectType, expected: GraphQLInputObjectType
) -> list[str]:
    differences: list[str] = []
    for field_name, expected_field in expected.fields.items():
        where = f"{type_name}.{field_name}"
        actual_field = actual.fields.get(field_name)
        if actual_field is None:
            differences.append(f"{where}: input field missing")
        else:
            differences.extend(_compare_value(where, actual_field, expected_field))
    # Inputs a client already sends must stay valid, so only optional fields may be added.
    differences.extend(
        f"{type_name}.{field_name}: new input field must be optional, "
        f"is {field.type} without a default"
        for field_name, field in actual.fields.items()
        if field_name not in expected.fields and _is_required(field)
    )
    return differences


def _compare_value(
    where: str,
    actual: GraphQLArgument | GraphQLInputField,
    expected: GraphQLArgument | GraphQLInputField,
) -> list[str]:
    if str(actual.type) != str(expected.type):
        return [f"{where}: type is {actual.type}, contract says {expected.type}"]
    actual_default, expected_default = _default_literal(actual), _default_literal(expected)
    if _default(actual_default, actual) != _default(expected_default, expected):
        return [
            f"{where}: default is {_show(actual_default)}, contract says {_show(expected_default)}"
        ]
    return []


def _default_literal(value: GraphQLArgument | GraphQLInputField) -> ValueNode | None:
    # Both schemas come from SDL, so the literal is on the AST node; reading it there works the
    # same across graphql-core 3.2 (default_value) and 3.3 (default).
    node = value.ast_node
    return None if node is None else node.default_value


def _default(literal: ValueNode | None, value: GraphQLArgument | GraphQLInputField) -> Any:
    # No default and a null default behave the same for a client (the value is null when
    # omitted), and strawberry prints `= null` for a Python default of None.
    if literal is None:
        return None
    coerced = value_from_ast(literal, value.type)
    # Coercing makes equal values compare equal however written ({a: 1, b: 2} vs {b: 2, a: 1},
    # 1 vs 1.0 for a Float); a literal that does not fit the type is compared as written.
    return print_ast(literal) if coerced is Undefined else coerced


def _show(literal: ValueNode | None) -> str:
    return "none" if literal is None else print_ast(literal)


def _is_required(value: GraphQLArgument | GraphQLInputField) -> bool:
    return is_non_null_type(value.type) and _default_literal(value) is None
