"""The merchant's deal editor form; it only parses input, the service validates the deal."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.forms import BoundField
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from weituan.core.money import MINOR_UNITS
from weituan.deals.models import Deal, RefundPolicy
from weituan.deals.services.deals import PRICE_MAX, DealInput

# One flash batch a line: when it goes on sale (local time) and how many units, e.g. "2030-11-11 20:00, 100".
_BATCH_LINE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})\s*[,，\s]\s*(\d+)")
_BATCH_TIME = "%Y-%m-%d %H:%M"


class _PicturesInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PicturesField(forms.ImageField):
    """Several pictures chosen at once, each checked as one is; cleaned to a list (empty for none)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", _PicturesInput(attrs={"accept": "image/*"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        pictures = data if isinstance(data, (list, tuple)) else [data]
        return [super(PicturesField, self).clean(picture, initial) for picture in pictures if picture]


class PriceField(forms.DecimalField):
    """A price as a merchant writes it, in yuan (the currency's main unit): "39.90", as the wallet's top-up
    takes it, not in fen. The form turns it into minor units once it knows the currency."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", _("in yuan, e.g. 39.90"))
        super().__init__(
            max_digits=None,
            decimal_places=2,
            min_value=Decimal("0.01"),
            max_value=Decimal(PRICE_MAX) / 100,
            widget=forms.NumberInput(attrs={"inputmode": "decimal"}),
            **kwargs,
        )


_PRICE_FIELDS = ("list_price", "deal_price", "team_price")
# A count typed on a phone: the digits keypad.
_COUNT = forms.NumberInput(attrs={"inputmode": "numeric"})


# The fields each sale mode adds (the editor shows them while the mode is on).
_TEAM_FIELDS = ("team_price", "team_size", "team_window_hours")
_FLASH_FIELDS = ("flash_batches",)


class _EditorField(BoundField):
    """A field of the deal editor: the first one with a problem (in the page's order) takes the focus
    when a refused form comes back, so the browser scrolls to it, scripts or not."""

    def build_widget_attrs(self, attrs: Any, widget: Any = None) -> dict[str, Any]:
        built = super().build_widget_attrs(attrs, widget)
        if self.errors and self.name == getattr(self.form, "first_problem", None):
            built["autofocus"] = True
        return built


class DealForm(forms.Form):
    """The deal editor, its fields in the order the page shows them, section by section: basics,
    prices, quantities and limits, times, the team and flash sale modes, the refund policy, pictures.

    A mode's fields count only while its switch is on: a merchant who tried a team price and turned
    the team mode off sells an ordinary deal, and what they typed is still in the form if they turn it
    back on. A post without the switches (`modes_chosen` absent: another client of the form) sells
    the modes whose fields it fills."""

    bound_field_class = _EditorField

    title = forms.CharField(label=_("Title"), max_length=120)
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    currency = forms.CharField(
        label=_("Currency"),
        max_length=3,
        initial="CNY",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off", "size": 4}),
    )
    list_price = PriceField(label=_("List price"))
    deal_price = PriceField(label=_("Deal price"))
    max_quantity = forms.IntegerField(label=_("Maximum quantity"), min_value=1, widget=_COUNT)
    tipping_point = forms.IntegerField(
        label=_("Tipping point (buyers)"), min_value=1, initial=1, widget=_COUNT
    )
    per_user_limit = forms.IntegerField(label=_("Limit per person"), min_value=1, initial=1, widget=_COUNT)
    gift_limit = forms.IntegerField(label=_("More as gifts"), min_value=0, initial=0, widget=_COUNT)
    starts_at = forms.DateTimeField(
        label=_("Starts"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ends_at = forms.DateTimeField(
        label=_("Ends"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    voucher_valid_days = forms.IntegerField(
        label=_("Voucher valid (days)"), min_value=1, initial=90, widget=_COUNT
    )
    team_mode = forms.BooleanField(
        label=_("Team purchase"),
        required=False,
        help_text=_("buyers who fill a team within its window pay the team price"),
    )
    team_price = PriceField(label=_("Team price"), required=False)
    team_size = forms.IntegerField(
        label=_("Team size"), min_value=2, max_value=50, required=False, widget=_COUNT
    )
    team_window_hours = forms.IntegerField(
        label=_("Team window (hours)"),
        min_value=1,
        max_value=168,
        required=False,
        help_text=_("hours a team has to fill (24 if empty)"),
        widget=_COUNT,
    )
    flash_mode = forms.BooleanField(
        label=_("Flash sale"),
        required=False,
        help_text=_("the units go on sale in batches at set times, one a buyer"),
    )
    flash_batches = forms.CharField(
        label=_("Flash batches"),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "2030-11-11 20:00, 100"}),
        required=False,
        help_text=_(
            "Flash sale: one batch a line, when it goes on sale and how many units; the batches add up "
            "to the maximum quantity, and each buyer gets one unit. Empty: not a flash sale."
        ),
    )
    refund_policy = forms.ChoiceField(
        label=_("Refund policy"),
        choices=[
            (RefundPolicy.WINDOW, _("Refund within the refund window after purchase")),
            (RefundPolicy.ANYTIME, _("Refund any time before the voucher is used")),
            (RefundPolicy.ON_EXPIRY, _("Unused vouchers are refunded automatically when they expire")),
        ],
        initial=RefundPolicy.WINDOW,
    )
    refund_window_days = forms.IntegerField(
        label=_("Refund window (days)"),
        min_value=0,
        initial=7,
        help_text=_("with a refund window: days after payment a buyer may ask for a refund (0: no refunds)"),
        widget=_COUNT,
    )
    image = PicturesField(
        label=_("Pictures"),
        required=False,
        help_text=_("up to 9 pictures of the deal, the first on its card (checked and resized)"),
    )
    modes_chosen = forms.BooleanField(required=False, initial=True, widget=forms.HiddenInput)

    @property
    def first_problem(self) -> str | None:
        """The first field, in the page's order, with a problem to show (None when none has)."""
        if not self.is_bound:
            return None
        return next((name for name in self.fields if name in self.errors), None)

    def clean(self) -> dict[str, Any]:
        """The prices in the currency's minor units, as the deal keeps them; a mode switched off leaves
        its fields out (their problems too: they are not sold)."""
        data = super().clean() or {}
        if data.get("modes_chosen"):
            for mode, names in (("team_mode", _TEAM_FIELDS), ("flash_mode", _FLASH_FIELDS)):
                if data.get(mode):
                    continue
                for name in names:
                    self.errors.pop(name, None)
                    data[name] = () if name == "flash_batches" else None
        per = MINOR_UNITS.get(str(data.get("currency", "")), 100)  # an unknown currency: the deal refuses it
        for name in _PRICE_FIELDS:
            price = data.get(name)
            if price is None:
                continue
            minor = price * per
            if minor != minor.to_integral_value():
                self.add_error(name, _("This currency has no smaller unit: give a whole amount."))
                continue
            data[name] = int(minor)
        return data

    def clean_flash_batches(self) -> tuple[tuple[datetime, int], ...]:
        batches = []
        for number, line in enumerate(str(self.cleaned_data["flash_batches"]).splitlines(), start=1):
            if not line.strip():
                continue
            found = _BATCH_LINE.fullmatch(line.strip())
            try:
                if found is None:
                    raise ValueError
                at = datetime.strptime(f"{found[1]} {found[2]}", _BATCH_TIME)
            except ValueError:
                raise forms.ValidationError(
                    _("Line %(number)d: write a batch as “2030-11-11 20:00, 100”") % {"number": number}
                ) from None
            batches.append((timezone.make_aware(at), int(found[3])))
        return tuple(sorted(batches))

    def fields_read(self) -> dict[str, Any]:
        """The deal's fields the form could read (call after `is_valid`), by `DealInput`'s names: as
        `to_input` gives them, less any with a problem of its own."""
        data = dict(self.cleaned_data)
        for name in ("image", "team_mode", "flash_mode", "modes_chosen"):
            data.pop(name, None)
        return data

    def to_input(self, media_ids: tuple[int, ...] = (), images: tuple[str, ...] = ()) -> DealInput:
        """The deal as entered; the picture, once stored as an upload, comes as `media_ids`, and an edited
        deal's pictures it keeps as `images`."""
        return DealInput(**self.fields_read(), media_ids=media_ids, images=images)

    @staticmethod
    def initial_of(deal: Deal) -> dict[str, Any]:
        """The form's fields filled from a saved deal, for editing it."""
        shown = ("image", "flash_batches", "team_mode", "flash_mode", "modes_chosen")
        names = [name for name in DealForm.base_fields if name not in shown]
        initial = {name: getattr(deal, name) for name in names}
        initial["team_mode"], initial["flash_mode"] = deal.team_size is not None, deal.flash_sale
        for name in ("starts_at", "ends_at"):
            initial[name] = timezone.localtime(initial[name]).strftime("%Y-%m-%dT%H:%M")
        per = MINOR_UNITS.get(deal.currency, 100)
        places = Decimal(1) / per  # 0.01 for yuan: "39.90"
        for name in _PRICE_FIELDS:
            if initial[name] is not None:
                initial[name] = (Decimal(initial[name]) / per).quantize(places)
        initial["flash_batches"] = "\n".join(
            f"{timezone.localtime(batch.release_at):{_BATCH_TIME}}, {batch.quantity}"
            for batch in deal.batches.all()
        )
        return initial
