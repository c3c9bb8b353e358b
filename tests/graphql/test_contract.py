"""The schema's agreement with the GraphQL contract, and the checker that decides it."""

import datetime
from pathlib import Path
from types import ModuleType

import pytest
import strawberry
from strawberry.types.base import has_object_definition

from app import enums as domain
from graphql_schema import inputs, types
from graphql_schema.contract import contract_differences
from graphql_schema.enums import ExchangeTarget

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_PATH = REPO_ROOT.parent / "shared" / "contract" / "core.graphql"
ROOT_TYPES = {"Query", "Mutation"}


def _type_of(difference: str) -> str:
    # Every line starts with the contract's type name, followed by ".", "(" or ":".
    return difference.split(":", 1)[0].split(".", 1)[0].split("(", 1)[0]


# --- the checker -------------------------------------------------------------------------------

CONTRACT = """
scalar DateTime
enum Color { RED GREEN }
interface Node { id: ID! }
type Item implements Node { id: ID! }
type Other { id: ID! }
union Thing = Item | Other
type Payout { amountFen: Int! }
type Entry implements Node {
  id: ID!
  note: String
  payouts: [Payout!]!
  color: Color!
  at: DateTime!
  process(first: Int = 20, after: String): [Payout!]
}
input Filter { shade: Color!  after: String  limit: Int }
type Query { entry(id: ID!): Entry  things: [Thing!]! }
"""


def _differences(schema: str) -> list[str]:
    return contract_differences(schema, CONTRACT)


def test_identical_schema_has_no_differences() -> None:
    assert _differences(CONTRACT) == []


def test_real_contract_agrees_with_itself() -> None:
    contract = CONTRACT_PATH.read_text()
    assert contract_differences(contract, contract) == []


def test_missing_type() -> None:
    schema = CONTRACT.replace("type Other { id: ID! }", "").replace("Item | Other", "Item")
    assert _differences(schema) == ["Other: type missing", "Thing: union lacks member Other"]


def test_kind_mismatch() -> None:
    schema = CONTRACT.replace("type Payout {", "interface Payout {")
    assert _differences(schema) == [
        "Payout: is an interface in the schema, an object type in the contract"
    ]


def test_missing_field() -> None:
    schema = CONTRACT.replace("  note: String\n", "")
    assert _differences(schema) == ["Entry.note: field missing"]


@pytest.mark.parametrize(
    ("contract_field", "schema_field", "expected"),
    [
        ("note: String", "note: String!", "Entry.note: type is String!, contract says String"),
        ("color: Color!", "color: Color", "Entry.color: type is Color, contract says Color!"),
        (
            "payouts: [Payout!]!",
            "payouts: [Payout]!",
            "Entry.payouts: type is [Payout]!, contract says [Payout!]!",
        ),
        (
            "payouts: [Payout!]!",
            "payouts: Payout!",
            "Entry.payouts: type is Payout!, contract says [Payout!]!",
        ),
        ("at: DateTime!", "at: String!", "Entry.at: type is String!, contract says DateTime!"),
    ],
)
def test_field_type_mismatch(contract_field: str, schema_field: str, expected: str) -> None:
    assert _differences(CONTRACT.replace(contract_field, schema_field)) == [expected]


def test_missing_argument() -> None:
    schema = CONTRACT.replace("process(first: Int = 20, after: String)", "process(after: String)")
    assert _differences(schema) == ["Entry.process(first): argument missing"]


def test_argument_type_mismatch() -> None:
    schema = CONTRACT.replace("first: Int = 20", "first: Int! = 20")
    assert _differences(schema) == ["Entry.process(first): type is Int!, contract says Int"]


@pytest.mark.parametrize(
    ("schema_first", "expected"),
    [
        ("first: Int = 10", "Entry.process(first): default is 10, contract says 20"),
        ("first: Int", "Entry.process(first): default is none, contract says 20"),
        ("first: Int = null", "Entry.process(first): default is null, contract says 20"),
    ],
)
def test_argument_default_mismatch(schema_first: str, expected: str) -> None:
    assert _differences(CONTRACT.replace("first: Int = 20", schema_first)) == [expected]


def test_argument_default_where_contract_has_none() -> None:
    schema = CONTRACT.replace("after: String)", 'after: String = "x")')
    assert _differences(schema) == ['Entry.process(after): default is "x", contract says none']


def test_null_default_equals_no_default() -> None:
    # What strawberry prints for `after: str | None = None`.
    assert _differences(CONTRACT.replace("after: String)", "after: String = null)")) == []


def test_defaults_are_compared_as_values() -> None:
    contract = (
        "input P { a: Int  b: Int }  type Query { f(p: P = {a: 1, b: 2}, x: Float = 1): Int }"
    )
    schema = (
        "input P { a: Int  b: Int }  type Query { f(p: P = {b: 2, a: 1}, x: Float = 1.0): Int }"
    )
    assert contract_differences(schema, contract) == []


def test_missing_enum_value() -> None:
    assert _differences(CONTRACT.replace("enum Color { RED GREEN }", "enum Color { RED }")) == [
        "Color.GREEN: enum value missing"
    ]


def test_missing_input_field() -> None:
    schema = CONTRACT.replace("after: String  limit: Int }", "after: String }")
    assert _differences(schema) == ["Filter.limit: input field missing"]


def test_input_field_type_mismatch() -> None:
    schema = CONTRACT.replace("limit: Int }", "limit: Int! }")
    assert _differences(schema) == ["Filter.limit: type is Int!, contract says Int"]


def test_input_field_default_mismatch() -> None:
    schema = CONTRACT.replace("limit: Int }", "limit: Int = 5 }")
    assert _differences(schema) == ["Filter.limit: default is 5, contract says none"]


def test_interface_not_implemented() -> None:
    schema = CONTRACT.replace("type Item implements Node", "type Item")
    assert _differences(schema) == ["Item: does not implement Node"]


def test_allowed_additions() -> None:
    schema = (
        CONTRACT.replace("enum Color { RED GREEN }", "enum Color { RED GREEN BLUE }")
        .replace("  note: String\n", "  note: String\n  extra: Int!\n")
        .replace(
            "process(first: Int = 20,", "process(first: Int = 20, kind: String, size: Int! = 3,"
        )
        .replace("limit: Int }", "limit: Int  sort: String  page: Int! = 1 }")
        .replace("union Thing = Item | Other", "union Thing = Item | Other | Payout")
        + "type Extra { id: ID! }\ninput ExtraInput { id: ID! }\n"
    )
    assert _differences(schema) == []


def test_new_required_argument_is_reported() -> None:
    schema = CONTRACT.replace("process(first: Int = 20,", "process(first: Int = 20, kind: String!,")
    assert _differences(schema) == [
        "Entry.process(kind): new argument must be optional, is String! without a default"
    ]


def test_new_required_input_field_is_reported() -> None:
    schema = CONTRACT.replace("limit: Int }", "limit: Int  sort: String! }")
    assert _differences(schema) == [
        "Filter.sort: new input field must be optional, is String! without a default"
    ]


def test_root_types_are_matched_by_operation() -> None:
    schema = "schema { query: RootQuery }\n" + CONTRACT.replace("type Query", "type RootQuery")
    assert _differences(schema) == []
    missing = CONTRACT.replace("type Query { entry(id: ID!): Entry ", "type Query { ")
    assert _differences(missing) == ["Query.entry: field missing"]


# --- the project's schema ----------------------------------------------------------------------


def test_project_schema_matches_contract() -> None:
    schema_module = pytest.importorskip("graphql_schema.schema")
    assert contract_differences(str(schema_module.schema), CONTRACT_PATH.read_text()) == []


# --- the types of this package, under stand-in root types --------------------------------------


def _strawberry_classes(module: ModuleType) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and obj.__module__ == module.__name__
        and has_object_definition(obj)
    ]


def _entry(*, show_process: bool = True) -> types.QueueEntry:
    return types.QueueEntry(
        id=strawberry.ID("7"),
        queue_key="mall",
        order_id=strawberry.ID("3"),
        order_line_id=strawberry.ID("4"),
        status=domain.EntryStatus.WAITING,
        paid_fen=10_000,
        ratio_bp=5_000,
        ratio_source=domain.RatioSource.DEFAULT,
        entitlement_fen=5_000,
        rewarded_fen=1_000,
        remaining_fen=4_000,
        progress_bp=2_000,
        number=12,
        position=3,
        amount_ahead_fen=8_000,
        estimated_wait_days=1.5,
        lottery_available=False,
        created_at=datetime.datetime(2024, 5, 1, 8, 0, tzinfo=datetime.UTC),
        ended_at=None,
        entry_pk=7,
        show_process=show_process,
    )


_exchanged: list[object] = []


@strawberry.type
class StubQuery:
    @strawberry.field
    def entry(self, id: strawberry.ID) -> types.QueueEntry | None:
        return _entry(show_process=id != "hidden")

    @strawberry.field
    def rule_fields(self, input: inputs.RebateRuleInput) -> list[str]:
        # Reports which fields arrived as UNSET, None or a value, to show the three stay apart.
        return [
            f"{name}={'unset' if value is strawberry.UNSET else value}"
            for name, value in sorted(vars(input).items())
            if name in {"enabled", "ratio_bp", "lottery"}
        ]


@strawberry.type
class StubMutation:
    @strawberry.mutation
    def exchange_entry(self, entry_id: strawberry.ID, target: ExchangeTarget) -> types.QueueEntry:
        _exchanged.append(target)
        return _entry()


stub_schema = strawberry.Schema(
    query=StubQuery,
    mutation=StubMutation,
    types=[*_strawberry_classes(types), *_strawberry_classes(inputs)],
)


def test_types_and_inputs_match_contract() -> None:
    differences = contract_differences(str(stub_schema), CONTRACT_PATH.read_text())
    assert [d for d in differences if _type_of(d) not in ROOT_TYPES] == []
    # The stand-in root fields are the contract's own; the rest of the roots are simply absent.
    assert all(d.endswith(": field missing") for d in differences), differences


class _Context:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str | None]] = []

    async def entry_process(
        self, entry: types.QueueEntry, first: int, after: str | None
    ) -> types.PayoutPage:
        self.calls.append((entry.entry_pk, first, after))
        payout = types.Payout(
            from_order_id=strawberry.ID("9"),
            amount_fen=250,
            at=datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC),
            payer_nickname=None,
            payer_avatar_url=None,
        )
        return types.PayoutPage(items=[payout], next_cursor="c2")


@pytest.mark.parametrize(
    ("arguments", "expected_call"),
    [
        ("", (7, 20, None)),
        ('(first: 5, after: "c1")', (7, 5, "c1")),
        ("(first: null)", (7, 20, None)),
    ],
)
async def test_process_asks_the_context(arguments: str, expected_call: tuple) -> None:
    context = _Context()
    query = (
        f'{{ entry(id: "7") {{ id process{arguments} {{ items {{ amountFen }} nextCursor }} }} }}'
    )
    result = await stub_schema.execute(query, context_value=context)
    assert result.errors is None
    assert result.data == {
        "entry": {"id": "7", "process": {"items": [{"amountFen": 250}], "nextCursor": "c2"}}
    }
    assert context.calls == [expected_call]


async def test_hidden_process_is_null_without_asking() -> None:
    context = _Context()
    query = '{ entry(id: "hidden") { process { nextCursor } } }'
    result = await stub_schema.execute(query, context_value=context)
    assert result.errors is None
    assert result.data == {"entry": {"process": None}}
    assert context.calls == []


async def test_omitted_input_field_differs_from_null() -> None:
    query = "{ ruleFields(input: {ratioBp: null, enabled: true}) }"
    result = await stub_schema.execute(query)
    assert result.errors is None
    assert result.data == {"ruleFields": ["enabled=True", "lottery=unset", "ratio_bp=None"]}


async def test_enum_arguments_arrive_as_domain_members() -> None:
    _exchanged.clear()
    query = 'mutation { exchangeEntry(entryId: "7", target: LOVE_VALUE) { status ratioSource } }'
    result = await stub_schema.execute(query)
    assert result.errors is None
    assert result.data == {"exchangeEntry": {"status": "WAITING", "ratioSource": "DEFAULT"}}
    assert _exchanged == [domain.ExchangeTarget.LOVE_VALUE]
    assert type(_exchanged[0]) is domain.ExchangeTarget
