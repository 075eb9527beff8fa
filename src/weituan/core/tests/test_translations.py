"""Every string the templates and code mark for translation has a Chinese translation, compiled and current."""

import re
import shutil
import struct
import subprocess
from pathlib import Path

from django.core.management import call_command

import weituan

SOURCE = Path(weituan.__file__).resolve().parent
# makemessages gives each app with a locale directory its own catalog; the rest go to the project's.
CATALOGS = ["locale", "accounts/locale"]


def _entries(po: Path, *flags: str) -> list[str]:
    """The catalog's live entries (obsolete ones left out) that msgattrib's flags select, header excluded."""
    result = subprocess.run(
        ["msgattrib", "--no-obsolete", *flags, str(po)], capture_output=True, text=True, check=True
    )
    blocks = (block.strip() for block in result.stdout.split("\n\n"))
    # Only the header has an empty msgid directly followed by its msgstr (a long msgid continues on lines).
    return [block for block in blocks if block and 'msgid ""\nmsgstr ""' not in block]


def test_every_marked_string_has_a_chinese_translation(tmp_path, settings, monkeypatch):
    """What `makemessages -l zh_Hans` would make of the catalogs today leaves nothing empty or fuzzy.

    It runs on a copy of the sources, so the committed catalogs are only read.
    """
    copy = tmp_path / "weituan"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "static", "media"))
    settings.LOCALE_PATHS = [copy / "locale"]
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["zh_Hans"], verbosity=0)

    problems = []
    for catalog in CATALOGS:
        po = copy / catalog / "zh_Hans" / "LC_MESSAGES" / "django.po"
        for entry in _entries(po, "--untranslated") + _entries(po, "--only-fuzzy"):
            problems.append(f"{catalog}/zh_Hans/LC_MESSAGES/django.po:\n{entry}")
    assert not problems, "untranslated or fuzzy:\n\n" + "\n\n".join(problems)

    # Not vacuous: the extraction found strings from templates and from code, in both catalogs.
    project = "\n\n".join(_entries(copy / "locale/zh_Hans/LC_MESSAGES/django.po", "--translated"))
    accounts = "\n\n".join(_entries(copy / "accounts/locale/zh_Hans/LC_MESSAGES/django.po", "--translated"))
    assert "#: microblog/templates/microblog/post_detail.html" in project
    assert 'msgid "Save"\nmsgstr "保存"' in project
    assert "#: accounts/forms.py" in accounts


def _mo_messages(data: bytes) -> dict[bytes, bytes]:
    """The msgid → msgstr pairs of a compiled catalog (GNU .mo: a header, then two tables of strings)."""
    order = "<" if data[:4] == struct.pack("<I", 0x950412DE) else ">"
    _revision, count, originals, translations = struct.unpack(f"{order}4I", data[4:20])

    def strings(table: int) -> list[bytes]:
        entries = (struct.unpack_from(f"{order}2I", data, table + 8 * n) for n in range(count))
        return [data[offset : offset + length] for length, offset in entries]

    return dict(zip(strings(originals), strings(translations), strict=True))


def test_the_compiled_catalogs_match_their_sources(tmp_path):
    """Django reads the .mo files: one compiled before the .po's last change would show stale words."""
    for catalog in CATALOGS:
        for language in ("zh_Hans", "en"):
            folder = SOURCE / catalog / language / "LC_MESSAGES"
            fresh = tmp_path / f"{catalog.replace('/', '_')}_{language}.mo"
            subprocess.run(["msgfmt", "-o", str(fresh), str(folder / "django.po")], check=True)
            committed = _mo_messages((folder / "django.mo").read_bytes())
            assert committed == _mo_messages(fresh.read_bytes()), f"recompile {folder / 'django.mo'}"
            assert b"" in committed  # the header: the reader understood the file


# Chinese in the sources reaches English readers untranslated; the brand in the header is the one exception.
_CHINESE = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+")
_BRAND = ">微团 <span>Weituan</span></a>"


def test_templates_and_marked_strings_carry_no_chinese_of_their_own():
    """Chinese words belong in the zh_Hans msgstr: a template or a msgid holding them shows them in English pages."""
    found = []
    for template in sorted(SOURCE.rglob("templates/**/*.html")):
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            if _CHINESE.search(line.replace(_BRAND, "")):
                found.append(f"{template.relative_to(SOURCE)}:{number}: {line.strip()}")
    for catalog in CATALOGS:
        po = SOURCE / catalog / "en" / "LC_MESSAGES" / "django.po"
        found += [
            f"{catalog} msgid: {line}"
            for line in po.read_text().splitlines()
            if line.startswith("msgid") and _CHINESE.search(line)
        ]
    assert not found, "Chinese outside the catalogs' translations:\n" + "\n".join(found)
    assert any(
        _BRAND in t.read_text() for t in SOURCE.rglob("templates/*.html")
    )  # the exception still matches
