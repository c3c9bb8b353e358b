"""The invariants of SPEC §19, checked on a live database (`rebate audit`, the `audit` query)."""

from __future__ import annotations

from collections import defaultdict

from tortoise import connections

from app.enums import EntryStatus, RewardOrder
from app.rebate.figures import BUCKET_SIZE


async def _rows(sql: str) -> list[dict]:
    return await connections.get("default").execute_query_dict(sql)


async def audit() -> list[str]:
    """Every violation found, as a sentence; an empty list means the books are sound."""
    violations: list[str] = []
    # 1. Balanced transactions; no forbidden negative balance.
    for row in await _rows(
        "SELECT t.key AS key, p.currency AS currency, SUM(p.amount) AS total "
        "FROM ledger_posting p JOIN ledger_transaction t ON t.id = p.txn_id "
        "GROUP BY t.key, p.currency HAVING SUM(p.amount) <> 0"
    ):
        violations.append(
            f"ledger transaction {row['key']} does not balance in {row['currency']}: {row['total']}"
        )
    for row in await _rows(
        "SELECT code, balance FROM ledger_account WHERE may_go_negative = FALSE AND balance < 0"
    ):
        violations.append(f"account {row['code']} is negative: {row['balance']}")
    # 2. Stored balances equal the sum of postings.
    for row in await _rows(
        "SELECT a.code AS code, a.balance AS balance, COALESCE(SUM(p.amount), 0) AS total "
        "FROM ledger_account a LEFT JOIN ledger_posting p ON p.account_id = a.id "
        "GROUP BY a.id, a.code, a.balance HAVING a.balance <> COALESCE(SUM(p.amount), 0)"
    ):
        violations.append(
            f"account {row['code']} stores {row['balance']} but its postings sum to {row['total']}"
        )
    # 3. Entries: rewarded is the sum of their payouts and never more than the entitlement.
    for row in await _rows(
        "SELECT e.id AS id, e.rewarded_fen AS rewarded, e.entitlement_fen AS entitled, "
        "COALESCE(SUM(p.amount_fen), 0) AS paid "
        "FROM queue_entry e LEFT JOIN payout p ON p.entry_id = e.id "
        "GROUP BY e.id, e.rewarded_fen, e.entitlement_fen "
        "HAVING e.rewarded_fen <> COALESCE(SUM(p.amount_fen), 0) "
        "OR e.rewarded_fen > e.entitlement_fen"
    ):
        violations.append(
            f"entry {row['id']}: rewarded {row['rewarded']}, payouts {row['paid']}, "
            f"entitlement {row['entitled']}"
        )
    for row in await _rows(
        "SELECT id, status FROM queue_entry "
        f"WHERE (status = '{EntryStatus.COMPLETED.value}' AND rewarded_fen <> entitlement_fen "
        "AND entitlement_fen > 0) "
        f"OR (status = '{EntryStatus.WAITING.value}' AND rewarded_fen >= entitlement_fen)"
    ):
        violations.append(f"entry {row['id']} is {row['status']} against its rewarded amount")
    # 4. Contributions: paid out plus returned is the amount, paid out is the sum of its payouts.
    for row in await _rows(
        "SELECT c.id AS id, c.amount_fen AS amount, c.paid_out_fen AS paid_out, "
        "c.returned_fen AS returned, COALESCE(SUM(p.amount_fen), 0) AS paid "
        "FROM contribution c LEFT JOIN payout p ON p.contribution_id = c.id "
        "GROUP BY c.id, c.amount_fen, c.paid_out_fen, c.returned_fen "
        "HAVING c.amount_fen <> c.paid_out_fen + c.returned_fen "
        "OR c.paid_out_fen <> COALESCE(SUM(p.amount_fen), 0)"
    ):
        violations.append(
            f"contribution {row['id']} of {row['amount']}: paid out {row['paid_out']} "
            f"(payouts {row['paid']}) + returned {row['returned']}"
        )
    violations += await _fifo_violations()
    violations += await _queue_figure_violations()
    # 6. One effect per cause: a settled order has at most one contribution and entry per line
    # (unique keys), and an unsettled order none at all.
    for row in await _rows(
        "SELECT o.id AS id FROM app_order o WHERE o.settled = FALSE AND ("
        "EXISTS (SELECT 1 FROM contribution c WHERE c.order_id = o.id) OR "
        "EXISTS (SELECT 1 FROM queue_entry e WHERE e.order_id = o.id))"
    ):
        violations.append(f"order {row['id']} touched a queue but is not settled")
    for row in await _rows(
        "SELECT order_id, COUNT(*) AS n FROM payment_notification "
        "GROUP BY order_id HAVING COUNT(*) > 1"
    ):
        violations.append(f"order {row['order_id']} was paid by {row['n']} notifications")
    violations += await _copy_violations()
    return violations


async def _copy_violations() -> list[str]:
    """7. Columns that copy what a row's own key leads to agree with it: the database checks
    the keys, not the copies (they are kept for the indexes)."""
    violations = []
    for row in await _rows(
        "SELECT e.id AS id FROM queue_entry e JOIN order_line l ON l.id = e.line_id "
        "JOIN app_order o ON o.id = l.order_id "
        "WHERE e.order_id <> l.order_id OR e.user_id <> o.user_id"
    ):
        violations.append(f"entry {row['id']} names another order or buyer than its line's")
    for row in await _rows(
        "SELECT c.id AS id FROM contribution c JOIN order_line l ON l.id = c.line_id "
        "WHERE c.order_id <> l.order_id"
    ):
        violations.append(f"contribution {row['id']} names another order than its line's")
    for row in await _rows(
        "SELECT p.id AS id FROM payout p JOIN contribution c ON c.id = p.contribution_id "
        "WHERE p.from_order_id <> c.order_id"
    ):
        violations.append(f"payout {row['id']} names another order than its contribution's")
    return violations


async def _fifo_violations() -> list[str]:
    """5. FIFO. Within one contribution the payouts go in entry order, and every entry paid before
    the last one was filled by it; and no entry still waiting now stands ahead of an entry paid
    under QUEUE_ORDER (a waiting entry's remaining only shrinks, so it had remaining then too)."""
    violations: list[str] = []
    payouts = await _rows(
        "SELECT p.id AS id, p.contribution_id AS contribution_id, p.amount_fen AS amount, "
        "e.id AS entry_id, e.number AS number, e.queue_id AS queue_id, "
        "e.entitlement_fen AS entitled "
        "FROM payout p JOIN queue_entry e ON e.id = p.entry_id ORDER BY p.id"
    )
    received: dict[int, int] = defaultdict(int)
    by_contribution: dict[int, list[dict]] = defaultdict(list)
    for payout in payouts:
        received[payout["entry_id"]] += payout["amount"]
        payout["after"] = received[payout["entry_id"]]
        by_contribution[payout["contribution_id"]].append(payout)
    for contribution_id, made in by_contribution.items():
        numbers = [p["number"] for p in made]
        if numbers != sorted(numbers):
            violations.append(f"contribution {contribution_id} paid entries out of order")
        for payout in made[:-1]:
            if payout["after"] != payout["entitled"]:
                violations.append(
                    f"contribution {contribution_id} moved past entry {payout['entry_id']} "
                    "before filling it"
                )
    # Highest entry number paid under QUEUE_ORDER, per queue; no waiting entry may stand before it.
    for row in await _rows(
        "SELECT e.queue_id AS queue_id, MAX(e.number) AS top FROM payout p "
        "JOIN queue_entry e ON e.id = p.entry_id "
        "JOIN contribution c ON c.id = p.contribution_id "
        f"WHERE c.reward_order = '{RewardOrder.QUEUE_ORDER.value}' GROUP BY e.queue_id"
    ):
        skipped = await _rows(
            "SELECT id FROM queue_entry "
            f"WHERE queue_id = {int(row['queue_id'])} AND number < {int(row['top'])} "
            f"AND status = '{EntryStatus.WAITING.value}' LIMIT 5"
        )
        for entry in skipped:
            violations.append(
                f"entry {entry['id']} still waits behind an entry of its queue already paid"
            )
    return violations


async def _queue_figure_violations() -> list[str]:
    """The running figures of each queue equal the entries they sum (what progress reads)."""
    violations: list[str] = []
    waiting = EntryStatus.WAITING.value
    for row in await _rows(
        "SELECT q.key AS key, q.waiting_count AS stored_n, q.liability_fen AS stored_fen, "
        "COUNT(e.id) AS n, COALESCE(SUM(e.entitlement_fen - e.rewarded_fen), 0) AS fen "
        "FROM rebate_queue q LEFT JOIN queue_entry e "
        f"ON e.queue_id = q.id AND e.status = '{waiting}' "
        "GROUP BY q.id, q.key, q.waiting_count, q.liability_fen "
        "HAVING q.waiting_count <> COUNT(e.id) "
        "OR q.liability_fen <> COALESCE(SUM(e.entitlement_fen - e.rewarded_fen), 0)"
    ):
        violations.append(
            f"queue {row['key']} stores {row['stored_n']} waiting / {row['stored_fen']} fen, "
            f"its entries say {row['n']} / {row['fen']}"
        )
    actual: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in await _rows(
        f"SELECT queue_id, number / {BUCKET_SIZE} AS bucket, order_completed AS done, "
        "COUNT(*) AS n, SUM(entitlement_fen - rewarded_fen) AS fen FROM queue_entry "
        f"WHERE status = '{waiting}' GROUP BY queue_id, number / {BUCKET_SIZE}, order_completed"
    ):
        sums = actual[(int(row["queue_id"]), int(row["bucket"]))]
        sums[0] += int(row["n"])
        sums[1] += int(row["fen"])
        if row["done"]:
            sums[2] += int(row["n"])
            sums[3] += int(row["fen"])
    stored = {
        (int(r["queue_id"]), int(r["bucket"])): [
            int(r["waiting_count"]),
            int(r["waiting_fen"]),
            int(r["completed_count"]),
            int(r["completed_fen"]),
        ]
        for r in await _rows(
            "SELECT queue_id, bucket, waiting_count, waiting_fen, completed_count, completed_fen "
            "FROM queue_bucket"
        )
    }
    for key in set(actual) | set(stored):
        if actual.get(key, [0, 0, 0, 0]) != stored.get(key, [0, 0, 0, 0]):
            violations.append(
                f"queue {key[0]} block {key[1]} stores {stored.get(key)}, "
                f"its entries say {actual.get(key)}"
            )
    return violations
