"""Timeline entries as Redis members and back."""

from weituan.microblog.timelines.store import Entry, entries_of_joined, entry_of_member, member_of


def test_joined_members_read_back_as_the_entries_in_order() -> None:
    entries = [
        Entry(7_300_000_000_000_000_123, 42, 42),
        Entry(7_200_000_000_000_000_001, 5, 981),
        Entry(9, 1, 2),
    ]
    joined = ",".join(member_of(entry) for entry in entries)
    assert entries_of_joined(joined) == entries
    assert [entry_of_member(member) for member in joined.split(",")] == entries
    assert entries_of_joined("") == []
