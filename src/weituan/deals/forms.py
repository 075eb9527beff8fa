"""The merchant's deal editor form; it only parses input, the service validates the deal."""

from django import forms

from weituan.deals.models import RefundPolicy
from weituan.deals.services.deals import DealInput


class DealForm(forms.Form):
    title = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea, required=False)
    image = forms.ImageField(required=False, help_text="a picture of the deal (checked and resized)")
    currency = forms.CharField(max_length=3, initial="CNY")
    list_price = forms.IntegerField(min_value=1, help_text="minor units (fen)")
    deal_price = forms.IntegerField(min_value=1, help_text="minor units (fen)")
    team_price = forms.IntegerField(min_value=1, required=False)
    team_size = forms.IntegerField(min_value=2, max_value=50, required=False)
    tipping_point = forms.IntegerField(min_value=1, initial=1)
    max_quantity = forms.IntegerField(min_value=1)
    per_user_limit = forms.IntegerField(min_value=1, initial=1)
    gift_limit = forms.IntegerField(min_value=0, initial=0)
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    voucher_valid_days = forms.IntegerField(min_value=1, initial=90)
    refund_policy = forms.ChoiceField(choices=RefundPolicy.choices, initial=RefundPolicy.WINDOW)
    refund_window_days = forms.IntegerField(min_value=0, initial=7)

    def to_input(self, media_ids: tuple[int, ...] = ()) -> DealInput:
        """The deal as entered; the picture, once stored as an upload, comes as `media_ids`."""
        data = dict(self.cleaned_data)
        data.pop("image")
        return DealInput(**data, media_ids=media_ids)
