"""Native API: deals, orders, teams, vouchers and the wallet. Every write accepts an Idempotency-Key."""

from collections.abc import Callable
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from ninja import Header, Query, Router, Status

from weituan.accounts.auth import api_auth, optional_auth, request_user
from weituan.core.errors import ValidationFailed
from weituan.core.idempotency import (
    MAX_KEY_LENGTH,
    Response,
    idempotency_mismatch,
    idempotent_call,
    request_fingerprint,
    user_scope,
)
from weituan.core.ids import MAX_ID
from weituan.core.money import MINOR_UNITS
from weituan.deals import queries
from weituan.deals.models import Deal, Order
from weituan.deals.pages import keyset_page, vouchers_of_holder_page
from weituan.deals.qr import CONTENT_TYPES, voucher_qr_image
from weituan.deals.schemas import (
    LIST_PAGE_MAX,
    DealIn,
    DealOut,
    ErrorOut,
    ListPageQuery,
    MergeIn,
    OrderIn,
    OrderOut,
    OrderPageQuery,
    TeamOut,
    TopUpIn,
    VoucherOut,
    WalletOut,
    WalletQuery,
    WebhookOut,
    deal_body,
    order_body,
    team_body,
    voucher_body,
    wallet_body,
)
from weituan.deals.services.deals import DealInput, deal_create, deal_publish
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.teams import team_merge, team_rescue_options, team_switch_solo
from weituan.deals.services.vouchers import voucher_code_normalize, voucher_redeem
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.services.webhooks import payment_webhook_handle
from weituan.deals.services.write_keys import (
    cancel_request,
    merge_request,
    publish_request,
    redeem_request,
    solo_request,
)
from weituan.mastodon.pagination import set_link_header
from weituan.tracking import facade as tracking

router = Router(tags=["deals"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="retries with the same key replay the first answer; the key used again for a"
        " different request is refused (422 `idempotency_mismatch`)",
    ),
]
ERRORS: dict[int, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    402: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
    503: ErrorOut,
}


def _once(
    request: HttpRequest,
    key: str | None,
    payload: Any,
    run: Callable[[], Response],
    *,
    keeps: str | None = None,
    done_when_kept: bool = False,
) -> Status[Any]:
    """Run a write once per Idempotency-Key of this user; a retry gets the first answer back. A key a
    row of theirs keeps (an order placed with it, a refund asked for with it, or a change made with it:
    an order cancelled or switched to the solo price, a team merged, a voucher redeemed, a deal
    published; `request_keeping_key`) names that request, so another is refused; `keeps` names the
    request this write is, if it keeps its key on its own row too (its retry is then `run` again, and
    finds that row). `done_when_kept`: the row keeping the key is written with the change itself
    (`services.write_keys`), so once it is there the write has taken effect, whatever became of its
    idempotency record (its answer lost, its process gone, its record swept after a day): the retry is
    `run` at once, answered from that row, rather than told the first is still being processed."""
    user = request_user(request)
    if key:
        kept = queries.request_keeping_key(user=user, key=key)
        if kept is not None and kept != keeps:
            raise idempotency_mismatch()
        if kept is not None and done_when_kept:
            return Status(*run())
    status, body = idempotent_call(
        scope=user_scope(user.id),
        key=key,
        fingerprint=request_fingerprint(request.method, request.path, payload),
        run=run,
    )
    return Status(status, body)


@router.post("/deals", response={201: DealOut, **ERRORS}, auth=api_auth, summary="Create a draft deal")
def create_deal(request: HttpRequest, payload: DealIn, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    def run() -> Response:
        fields = payload.dict()
        batches = tuple((batch["release_at"], batch["quantity"]) for batch in fields.pop("flash_batches"))
        data = DealInput(
            **{
                **fields,
                "images": tuple(fields["images"]),
                "media_ids": tuple(fields["media_ids"]),
                "flash_batches": batches,
            }
        )
        return 201, deal_body(deal_create(merchant=request_user(request), data=data))

    return _once(request, idempotency_key, payload.dict(), run)


@router.get("/deals/{id:deal_id}", response={200: DealOut, **ERRORS}, auth=optional_auth, summary="A deal")
def get_deal(request: HttpRequest, deal_id: int) -> Status[Any]:
    user = request_user(request)
    deal = queries.deal_for_viewer(deal_id=deal_id, user=user)
    tracking.event_record(
        event=tracking.EventName.DEAL_VIEW,
        user_id=user.pk if user is not None else None,
        visitor_id=tracking.visitor_id_of(request),
        deal_id=deal.id,
        url=request.build_absolute_uri(),
    )
    return Status(200, deal_body(deal))


@router.post(
    "/deals/{id:deal_id}/publish", response={200: DealOut, **ERRORS}, auth=api_auth, summary="Publish a draft"
)
def publish_deal(request: HttpRequest, deal_id: int, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    # The publication keeps its key (`services.write_keys`), as a cancel does.
    def run() -> Response:
        published = deal_publish(deal_id=deal_id, by=request_user(request), client_key=idempotency_key)
        return 200, deal_body(published)

    return _once(request, idempotency_key, {}, run, keeps=publish_request(deal_id), done_when_kept=True)


@router.post(
    "/deals/{id:deal_id}/orders",
    response={201: OrderOut, **ERRORS},
    auth=api_auth,
    summary="Buy: hold the payment for `quantity` units, solo, starting a team or joining one",
)
def place_order(
    request: HttpRequest, deal_id: int, payload: OrderIn, idempotency_key: IdempotencyKey = None
) -> Status[Any]:
    return Status(201, order_body(order_for_api(deal_id, request_user(request), payload, idempotency_key)))


def order_for_api(
    deal_id: int, buyer: Any, payload: OrderIn, idempotency_key: str | None, deal: Deal | None = None
) -> Order:
    """What `POST /deals/{deal_id}/orders` does once its caller and input are known (`buyer` is the
    user, or for a solo order anything with the user's `id`; `deal` as `order_place` takes it)."""
    # The order is its own idempotency record: it keeps the key under a unique constraint, so a retry
    # (even one racing the first) is answered with the order the first placed, and a retry asking for
    # something else is refused with `idempotency_mismatch`, as is a key the user's other writes used
    # (`_once`). A refusal stores nothing.
    if idempotency_key is not None and len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH}", code="invalid_idempotency_key"
        )
    return order_place(
        deal_id=deal_id,
        buyer=buyer,
        quantity=payload.quantity,
        gift_quantity=payload.gift_quantity,
        team=payload.team,
        expected_unit_price=payload.unit_price,
        client_key=idempotency_key or None,
        gateway=payload.gateway or "wallet",
        share_code=payload.share or "",
        deal=deal,
    )


@router.post(
    "/payments/{gateway}/webhook",
    response={200: WebhookOut, **ERRORS},
    auth=None,
    summary="Webhook of a hosted payment provider (signed with the `Webhook-Signature` header)",
)
def payment_webhook(request: HttpRequest, gateway: str) -> Status[Any]:
    try:
        body = request.body
    except RawPostDataException:
        # A multipart form, parsed (and its bytes let go) before the view: no provider signs one, and
        # as an empty body it is refused as any unsigned body is.
        body = b""
    answer = payment_webhook_handle(
        gateway_name=gateway, body=body, signature=request.headers.get("Webhook-Signature", "")
    )
    return Status(200, answer)


@router.get(
    "/orders",
    response={200: list[OrderOut], **ERRORS},
    auth=api_auth,
    summary="My orders, newest first, paged by id (`max_id`, `since_id`, `min_id`; `before` as `max_id`);"
    " the `Link` header gives the next (older) and previous (newer) pages",
)
def list_orders(request: HttpRequest, response: HttpResponse, asked: Query[OrderPageQuery]) -> Status[Any]:
    orders = queries.orders_of_buyer(user=request_user(request)).prefetch_related("vouchers", "refunds")
    page = keyset_page(
        orders,
        limit=max(1, min(asked.limit, LIST_PAGE_MAX)),
        max_id=_cursor(asked.max_id if asked.max_id is not None else asked.before),
        since_id=_cursor(asked.since_id),
        min_id=_cursor(asked.min_id),
        neighbours=False,
    )
    set_link_header(response, request, [order.id for order in page.items])
    return Status(200, [order_body(order) for order in page.items])


@router.get("/orders/{id:order_id}", response={200: OrderOut, **ERRORS}, auth=api_auth, summary="An order")
def get_order(request: HttpRequest, order_id: int) -> Status[Any]:
    return Status(200, order_body(queries.order_for_user(order_id=order_id, user=request_user(request))))


@router.post(
    "/orders/{id:order_id}/cancel",
    response={200: OrderOut, **ERRORS},
    auth=api_auth,
    summary="Withdraw an order whose payment is only held (before its deal tips, or in a team not filled)",
)
def cancel_order(request: HttpRequest, order_id: int, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    # The cancel keeps its key (`services.write_keys`): its retry is answered with the cancelled order
    # for as long as the order exists, even when its first answer was lost after the cancel committed.
    def run() -> Response:
        cancelled = order_cancel(order_id=order_id, by=request_user(request), client_key=idempotency_key)
        return 200, order_body(cancelled)

    return _once(request, idempotency_key, {}, run, keeps=cancel_request(order_id), done_when_kept=True)


@router.post(
    "/orders/{id:order_id}/refund",
    response={200: OrderOut, **ERRORS},
    auth=api_auth,
    summary="Refund an order",
)
def refund_order(request: HttpRequest, order_id: int, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    # The refund keeps the key: a retry after a `refund_pending` answer (which is not stored) finds the
    # refund it asked for, and is answered with the order as it now stands once that refund completed.
    def run() -> Response:
        refunded = order_refund(order_id=order_id, by=request_user(request), client_key=idempotency_key)
        return 200, order_body(refunded)

    return _once(request, idempotency_key, {}, run, keeps=f"refund:{order_id}")


@router.get(
    "/teams/{id:team_id}", response={200: TeamOut, **ERRORS}, auth=optional_auth, summary="A team (拼团)"
)
def get_team(request: HttpRequest, team_id: int) -> Status[Any]:
    team = queries.team_for_viewer(team_id=team_id)
    options = [other.id for other in team_rescue_options(team=team)]
    return Status(200, team_body(team, queries.team_member_names(team=team), options))


@router.post(
    "/teams/{id:team_id}/merge",
    response={200: TeamOut, **ERRORS},
    auth=api_auth,
    summary="Move the whole team into another open team of the deal (its leader: the rescue offer)",
)
def merge_team(
    request: HttpRequest, team_id: int, payload: MergeIn, idempotency_key: IdempotencyKey = None
) -> Status[Any]:
    # The merge keeps its key (`services.write_keys`): its retry is answered with the team it moved
    # into, as a cancel's is with the order.
    def run() -> Response:
        by = request_user(request)
        into = team_merge(team_id=team_id, into_id=payload.into, by=by, client_key=idempotency_key)
        into = queries.team_for_viewer(team_id=into.id)
        return 200, team_body(into, queries.team_member_names(team=into))

    keeps = merge_request(team_id, payload.into)
    return _once(request, idempotency_key, payload.dict(), run, keeps=keeps, done_when_kept=True)


@router.post(
    "/orders/{id:order_id}/solo",
    response={200: OrderOut, **ERRORS},
    auth=api_auth,
    summary="Leave the team and hold the solo price instead (a member of an open team)",
)
def order_solo(request: HttpRequest, order_id: int, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    # The switch keeps its key, as a cancel does.
    def run() -> Response:
        solo = team_switch_solo(order_id=order_id, by=request_user(request), client_key=idempotency_key)
        return 200, order_body(solo)

    return _once(request, idempotency_key, {}, run, keeps=solo_request(order_id), done_when_kept=True)


@router.get(
    "/vouchers",
    response={200: list[VoucherOut], **ERRORS},
    auth=api_auth,
    summary="My vouchers, newest first, paged by id (`max_id`, `since_id`, `min_id`); the `Link` header"
    " gives the next (older) and previous (newer) pages",
)
def list_vouchers(request: HttpRequest, response: HttpResponse, asked: Query[ListPageQuery]) -> Status[Any]:
    page = vouchers_of_holder_page(
        user=request_user(request),
        limit=max(1, min(asked.limit, LIST_PAGE_MAX)),
        max_id=_cursor(asked.max_id),
        since_id=_cursor(asked.since_id),
        min_id=_cursor(asked.min_id),
        neighbours=False,
    )
    set_link_header(response, request, [voucher.id for voucher in page.items])
    return Status(200, [voucher_body(voucher) for voucher in page.items])


def _cursor(asked: int | None) -> int | None:
    """A cursor of the API: an id, a number beyond any id standing for the largest, below 0 for 0."""
    return None if asked is None else min(max(asked, 0), MAX_ID)


def _qr_response(kind: str) -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "responses": {
            200: {"description": "the voucher code's QR image", "content": {CONTENT_TYPES[kind]: image}}
        }
    }


def _voucher_qr(request: HttpRequest, code: str, kind: str) -> HttpResponse:
    voucher = queries.voucher_for_holder_or_merchant(code=code, user=request_user(request))
    image, content_type = voucher_qr_image(code=voucher.code, kind=kind)
    response = HttpResponse(image, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


@router.get(
    "/vouchers/{code}/qr.png",
    response=ERRORS,
    auth=api_auth,
    url_name="voucher_qr_png",
    openapi_extra=_qr_response("png"),
    summary="A voucher's QR code as PNG (its holder, or the deal's merchant)",
)
def voucher_qr_png(request: HttpRequest, code: str) -> HttpResponse:
    return _voucher_qr(request, code, "png")


@router.get(
    "/vouchers/{code}/qr.svg",
    response=ERRORS,
    auth=api_auth,
    url_name="voucher_qr_svg",
    openapi_extra=_qr_response("svg"),
    summary="A voucher's QR code as SVG (its holder, or the deal's merchant)",
)
def voucher_qr_svg(request: HttpRequest, code: str) -> HttpResponse:
    return _voucher_qr(request, code, "svg")


@router.post(
    "/vouchers/{code}/redeem",
    response={200: VoucherOut, **ERRORS},
    auth=api_auth,
    summary="Redeem a voucher (merchant)",
)
def redeem_voucher(request: HttpRequest, code: str, idempotency_key: IdempotencyKey = None) -> Status[Any]:
    # The redemption keeps its key (`services.write_keys`): its retry is answered with the voucher, not
    # `already_redeemed`.
    def run() -> Response:
        redeemed = voucher_redeem(code=code, by=request_user(request), client_key=idempotency_key)
        return 200, voucher_body(redeemed)

    keeps = redeem_request(voucher_code_normalize(code))
    return _once(request, idempotency_key, {"code": code}, run, keeps=keeps, done_when_kept=True)


@router.get("/wallet", response={200: WalletOut, **ERRORS}, auth=api_auth, summary="My wallet")
def get_wallet(request: HttpRequest, asked: Query[WalletQuery]) -> Status[Any]:
    currency = asked.currency
    if currency not in MINOR_UNITS:  # as a top-up refuses it, rather than an empty wallet of it
        raise ValidationFailed(f"Unknown currency {currency}", code="invalid_currency")
    return Status(200, wallet_body(queries.wallet_of(user=request_user(request), currency=currency)))


@router.post(
    "/wallet/top_up",
    response={200: WalletOut, **ERRORS},
    auth=api_auth,
    summary="Add play money (dev and demo only)",
)
def top_up_wallet(
    request: HttpRequest, payload: TopUpIn, idempotency_key: IdempotencyKey = None
) -> Status[Any]:
    user = request_user(request)

    def run() -> Response:
        wallet_top_up(user=user, amount=payload.amount, currency=payload.currency, key=idempotency_key)
        return 200, wallet_body(queries.wallet_of(user=user, currency=payload.currency))

    return _once(request, idempotency_key, payload.dict(), run)
