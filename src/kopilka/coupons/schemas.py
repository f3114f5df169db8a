"""What crosses the API for coupon pools and codes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from kopilka.core.dates import Timestamp
from kopilka.coupons.codes import MAX_CODE_LENGTH, PREFIX_RE


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no name needs control characters
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


Text = Annotated[str, AfterValidator(_printable)]
Money = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
Sku = Annotated[Text, Field(min_length=1, max_length=100)]
Category = Annotated[Text, Field(min_length=1, max_length=100)]
StoreCode = Annotated[Text, Field(min_length=1, max_length=64)]
Channel = Literal["pos", "online", "app"]
RewardKind = Literal["percent", "fixed", "points", "multiplier", "free_product"]


class RewardIn(BaseModel):
    """``percent`` (value 0–100, optional ``max_discount`` in money), ``fixed`` (value in
    money), ``points`` (value in ``currency``), ``multiplier`` (value > 1 times the points
    the rules earn in ``currency``), ``free_product`` (``free_sku``, ``free_quantity``).
    ``skus``/``categories`` narrow the discount or points to matching lines."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: RewardKind
    value: Annotated[
        Decimal | None, Field(gt=0, max_digits=17, decimal_places=4, allow_inf_nan=False)
    ] = None
    currency: Annotated[str | None, Field(min_length=1, max_length=16)] = None
    max_discount: Money | None = None
    skus: Annotated[list[Sku], Field(max_length=500)] = []
    categories: Annotated[list[Category], Field(max_length=200)] = []
    free_sku: Sku | None = None
    free_quantity: Annotated[
        Decimal | None, Field(gt=0, max_digits=12, decimal_places=3, allow_inf_nan=False)
    ] = None

    @model_validator(mode="after")
    def _shape(self) -> RewardIn:
        k = self.kind
        if k == "free_product":
            if self.free_sku is None:
                raise ValueError("free_product needs free_sku")
            if self.value is not None:
                raise ValueError("free_product takes free_sku and free_quantity, not value")
        elif self.value is None:
            raise ValueError(f"{k} needs a value")
        if k == "percent" and self.value is not None and self.value > 100:
            raise ValueError("a percent is at most 100")
        if (
            k == "fixed"
            and self.value is not None
            and self.value != self.value.quantize(Decimal("0.01"))
        ):
            raise ValueError("a fixed discount is money: at most 2 decimal places")
        if k == "multiplier" and self.value is not None and not 1 < self.value <= 100:
            raise ValueError("a multiplier is more than 1 and at most 100")
        if k in ("points", "multiplier") and self.currency is None:
            raise ValueError(f"{k} needs a currency")
        if k not in ("points", "multiplier") and self.currency is not None:
            raise ValueError(f"{k} takes no currency")
        if k != "percent" and self.max_discount is not None:
            raise ValueError("max_discount is for percent discounts")
        if k != "free_product" and (self.free_sku is not None or self.free_quantity is not None):
            raise ValueError("free_sku and free_quantity are for free_product")
        return self


class PatternIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    prefix: Annotated[str, Field(pattern=PREFIX_RE)] = ""
    groups: Annotated[int, Field(ge=1, le=6)] = 2
    group_length: Annotated[int, Field(ge=3, le=8)] = 4

    @field_validator("prefix", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _length(self) -> PatternIn:
        n = len(self.prefix) + self.groups * (self.group_length + 1)
        if n > MAX_CODE_LENGTH:
            raise ValueError(f"codes of this pattern would be {n} characters long")
        if self.groups * self.group_length < 6:
            raise ValueError("at least 6 random characters, so that codes cannot be guessed")
        return self


class _PoolFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Annotated[Text | None, Field(max_length=2000)] = None
    status: Literal["active", "paused"] = "active"
    reward: RewardIn
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    min_receipt: Money | None = None
    stores: Annotated[list[StoreCode], Field(max_length=1000)] = []
    channels: Annotated[list[Channel], Field(max_length=3)] = []
    uses_per_code: Annotated[int | None, Field(ge=1, le=1_000_000_000)] = 1
    uses_per_member: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    stackable: bool = False
    code_pattern: PatternIn = PatternIn()

    @model_validator(mode="after")
    def _window(self) -> _PoolFields:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class PoolIn(_PoolFields):
    """A coupon pool: a campaign of codes with one reward, conditions and limits.
    ``uses_per_code``: 1 for single-use codes, N for a multi-use code's global limit, null
    for no limit; ``uses_per_member``: uses of this pool's codes per member; ``stackable``:
    false means no other coupon on the same receipt."""


class PoolPatch(BaseModel):
    """Any fields of a pool; the result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text | None, Field(min_length=1, max_length=200)] = None
    description: Annotated[Text | None, Field(max_length=2000)] = None
    status: Literal["active", "paused"] | None = None
    reward: RewardIn | None = None
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    min_receipt: Money | None = None
    stores: Annotated[list[StoreCode] | None, Field(max_length=1000)] = None
    channels: Annotated[list[Channel] | None, Field(max_length=3)] = None
    uses_per_code: Annotated[int | None, Field(ge=1, le=1_000_000_000)] = None
    uses_per_member: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    stackable: bool | None = None
    code_pattern: PatternIn | None = None


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: Annotated[int, Field(ge=1, le=10_000_000)]


class PersonalIn(BaseModel):
    """Issue one personal code of the pool to each member (a member may hold several)."""

    model_config = ConfigDict(extra="forbid")
    member_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]


class ImportIn(BaseModel):
    """Codes made elsewhere (e.g. printed by a partner); the same as a CSV upload with the
    columns ``code`` and, optionally, ``member_id``."""

    model_config = ConfigDict(extra="forbid")
    codes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=MAX_CODE_LENGTH)]],
        Field(min_length=1, max_length=100_000),
    ]
    member_ids: list[uuid.UUID | None] | None = None

    @model_validator(mode="after")
    def _same_length(self) -> ImportIn:
        if self.member_ids is not None and len(self.member_ids) != len(self.codes):
            raise ValueError("member_ids, when given, has one entry per code")
        return self


class SheetIn(BaseModel):
    """A printable PDF of codes: the given ``codes`` of the pool, or up to ``limit`` of its
    codes still unused (``after``: continue after this code id, from ``next_after``)."""

    model_config = ConfigDict(extra="forbid")
    codes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=2000)
    ] = []
    limit: Annotated[int, Field(ge=1, le=2000)] = 24
    after: Annotated[int | None, Field(ge=0)] = None
    symbology: Literal["qr", "code128", "both"] = "qr"
    columns: Annotated[int, Field(ge=1, le=6)] = 3
    rows: Annotated[int, Field(ge=1, le=12)] = 7
    title: Annotated[Text | None, Field(max_length=200)] = None
    lang: Literal["en", "ru"] = "ru"


# ---------------------------------------------------------------------------- answers
# Validated as they leave, strictly (``extra="forbid"``: a key no model names is a broken
# contract; ``strict``: a value is never converted to the declared type on the way out).
# The code lookup is answered as the service builds it (``history`` only for those who may
# see it), under the model it declares.


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RewardOut(_Out):
    """What a code gives (see ``RewardIn``); ``value`` in money for ``fixed``."""

    kind: RewardKind
    value: str | None
    currency: str | None
    max_discount: str | None
    skus: list[str]
    categories: list[str]
    free_sku: str | None
    free_quantity: str | None


class CodePatternOut(_Out):
    prefix: str
    groups: int
    group_length: int
    example: str


class GenerationOut(_Out):
    """Progress of codes being generated by the worker (``idle`` when none was asked)."""

    status: Literal["idle", "queued", "running", "done", "failed"]
    requested: int
    done: int
    error: str | None
    started_at: str | None
    finished_at: str | None


class PoolOut(_Out):
    id: str
    name: str
    description: str | None
    status: Literal["active", "paused"]
    reward: RewardOut
    valid_from: str | None
    valid_until: str | None
    min_receipt: str | None
    stores: list[str]
    channels: list[Channel]
    uses_per_code: int | None
    uses_per_member: int | None
    stackable: bool
    code_pattern: CodePatternOut
    code_count: int
    generation: GenerationOut
    created_at: str | None
    updated_at: str | None


class PoolStatsOut(_Out):
    """Uses taken (and not given back), and uses given back by returns and cancels."""

    uses: int
    released: int


class PoolDetailOut(PoolOut):
    stats: PoolStatsOut


class PoolPage(_Out):
    items: list[PoolOut]
    next_cursor: str | None


class PersonalCodeOut(_Out):
    member_id: str
    code: str


class PersonalCodesOut(_Out):
    """The new codes, one per member, in the order of ``member_ids``."""

    codes: list[PersonalCodeOut]


class ImportedOut(_Out):
    imported: int
    pool: PoolOut


CodeStatus = Literal["available", "used", "exhausted", "expired", "not_started", "paused"]
CodeSource = Literal["generated", "imported", "personal"]


class CodeRowOut(_Out):
    code: str
    status: CodeStatus
    uses: int
    member_id: str | None
    source: CodeSource
    created_at: str


class CodePage(_Out):
    items: list[CodeRowOut]
    next_cursor: str | None


class PoolRefOut(_Out):
    id: str
    name: str
    description: str | None


class CodeUseOut(_Out):
    """One use of a code: the receipt, what it gave (``discount`` in money; ``points``:
    ``earn`` and ``multipliers`` per currency) and, if given back, when."""

    purchase_id: str
    member_id: str | None
    used_at: str | None
    released_at: str | None
    discount: str
    points: dict[str, dict[str, str]]


class CodeOut(_Out):
    """A code with its status; ``history`` (its uses) is not shown to cashiers, and not
    in a member's list of coupons."""

    code: str
    status: CodeStatus
    source: CodeSource
    member_id: str | None
    uses: int
    uses_per_code: int | None
    uses_left: int | None
    pool: PoolRefOut
    reward: RewardOut
    valid_from: str | None
    valid_until: str | None
    created_at: str | None
    history: list[CodeUseOut] | None = None


class CodeListOut(_Out):
    items: list[CodeOut]
    next_cursor: str | None
