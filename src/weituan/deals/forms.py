"""The merchant's deal editor form; it only parses input, the service validates the deal."""

import re
from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from weituan.deals.models import Deal, RefundPolicy
from weituan.deals.services.deals import DealInput

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


class DealForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=120)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea, required=False)
    image = PicturesField(
        label=_("Pictures"),
        required=False,
        help_text=_("up to 9 pictures of the deal, the first on its card (checked and resized)"),
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="CNY")
    list_price = forms.IntegerField(label=_("List price"), min_value=1, help_text=_("minor units (fen)"))
    deal_price = forms.IntegerField(label=_("Deal price"), min_value=1, help_text=_("minor units (fen)"))
    team_price = forms.IntegerField(label=_("Team price"), min_value=1, required=False)
    team_size = forms.IntegerField(label=_("Team size"), min_value=2, max_value=50, required=False)
    team_window_hours = forms.IntegerField(
        label=_("Team window (hours)"),
        min_value=1,
        max_value=168,
        required=False,
        help_text=_("hours a team has to fill (24 if empty)"),
    )
    tipping_point = forms.IntegerField(label=_("Tipping point (buyers)"), min_value=1, initial=1)
    max_quantity = forms.IntegerField(label=_("Maximum quantity"), min_value=1)
    per_user_limit = forms.IntegerField(label=_("Limit per person"), min_value=1, initial=1)
    gift_limit = forms.IntegerField(label=_("More as gifts"), min_value=0, initial=0)
    starts_at = forms.DateTimeField(
        label=_("Starts"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ends_at = forms.DateTimeField(
        label=_("Ends"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    voucher_valid_days = forms.IntegerField(label=_("Voucher valid (days)"), min_value=1, initial=90)
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

    def to_input(self, media_ids: tuple[int, ...] = (), images: tuple[str, ...] = ()) -> DealInput:
        """The deal as entered; the picture, once stored as an upload, comes as `media_ids`, and an edited
        deal's pictures it keeps as `images`."""
        data = dict(self.cleaned_data)
        data.pop("image")
        return DealInput(**data, media_ids=media_ids, images=images)

    @staticmethod
    def initial_of(deal: Deal) -> dict[str, Any]:
        """The form's fields filled from a saved deal, for editing it."""
        names = [name for name in DealForm.base_fields if name not in ("image", "flash_batches")]
        initial = {name: getattr(deal, name) for name in names}
        for name in ("starts_at", "ends_at"):
            initial[name] = timezone.localtime(initial[name]).strftime("%Y-%m-%dT%H:%M")
        initial["flash_batches"] = "\n".join(
            f"{timezone.localtime(batch.release_at):{_BATCH_TIME}}, {batch.quantity}"
            for batch in deal.batches.all()
        )
        return initial
