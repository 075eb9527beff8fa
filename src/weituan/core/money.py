"""Money as integer minor units with a currency; never floats."""

from dataclasses import dataclass

# Minor units per major unit, for the currencies the product formats.
MINOR_UNITS = {"CNY": 100, "USD": 100, "EUR": 100, "HKD": 100, "JPY": 1, "KRW": 1, "TWD": 100, "GBP": 100}
# One symbol a currency, the same in every language. The yuan and the yen share "¥"; the site's own
# currency keeps it, and the yen is written "JP¥" (as HK$ and NT$ tell their dollars apart), so that a
# price of 1,000 yen is never read as 1,000 yuan.
SYMBOLS = {
    "CNY": "¥",
    "USD": "$",
    "EUR": "€",
    "HKD": "HK$",
    "JPY": "JP¥",
    "KRW": "₩",
    "TWD": "NT$",
    "GBP": "£",
}


class CurrencyMismatch(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def format(self) -> str:
        per = MINOR_UNITS[self.currency]
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), per)
        symbol = SYMBOLS.get(self.currency, self.currency + " ")
        if per == 1:
            return f"{sign}{symbol}{major:,}"
        return f"{sign}{symbol}{major:,}.{minor:0{len(str(per)) - 1}d}"

    def __str__(self) -> str:
        return self.format()
