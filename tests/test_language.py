"""The parser: syntax only, with the place of every error."""
import pytest
from hypothesis import given, settings, strategies as st

from synthcli.errors import SynthError, did_you_mean
from synthcli.language import Add, Connect, Set, parse_line, parse_text, tokenize


def test_add_with_params_keeps_columns():
    cmd = parse_line("add vco osc1 wave=saw freq=110", 3)
    assert isinstance(cmd, Add)
    assert (cmd.type, cmd.name) == ("vco", "osc1")
    assert cmd.params == (("wave", "saw"), ("freq", "110"))
    assert (cmd.type.col, cmd.name.col, cmd.params[1][1].col) == (5, 9, 28)


def test_connect_ports_are_optional():
    cmd = parse_line("connect l1 f1.cutoff")
    assert isinstance(cmd, Connect)
    assert (cmd.src.module, cmd.src.port, cmd.dst.module, cmd.dst.port) == ("l1", None, "f1", "cutoff")
    assert cmd.dst.port.col == 15


def test_comments_and_blank_lines():
    assert parse_line("   # nothing here") is None
    assert parse_line("") is None
    cmd = parse_line("set f1.cutoff 1200   # brighter")
    assert isinstance(cmd, Set) and cmd.value == "1200"


def test_quoted_strings_keep_spaces_and_hashes():
    assert tokenize('pattern kb "c3 # e3"') == ["pattern", "kb", '"c3 # e3"']


def test_a_hash_inside_a_word_is_a_sharp_and_at_its_start_a_comment():
    """`set o.freq c#4` was cut to `c` (C3) by a comment starting at '#'."""
    assert tokenize("set o.freq c#4 #c sharp") == ["set", "o.freq", "c#4"]
    assert tokenize("add vco o freq=f#2#x") == ["add", "vco", "o", "freq=f#2#x"]   # then a bad value, said


@pytest.mark.parametrize("text, line, col, words", [
    ("ad vco x", 1, 1, "unknown command 'ad', did you mean 'add'?"),
    ("add vco", 1, 8, "usage is 'add TYPE NAME"),
    ("add vco 1osc", 1, 9, "not a valid module name"),
    ("add vco " + "o" * 33, 1, 9, "is too long (33 characters; at most 32)"),
    ("add vco osc freq", 1, 13, "expected param=value"),
    ("add vco osc freq=1 freq=2", 1, 20, "given twice"),
    ("connect a", 1, 10, "usage is 'connect"),
    ("connect a b c", 1, 13, "unexpected 'c'"),
    ("set osc1 440", 1, 5, "expected NAME.PARAM"),
    ('add vco "osc', 1, 9, "unterminated string"),
    ('pattern kb "c3 e3"#c', 1, 19, "'#' right after a closing '\"': put a space between them"),   # not a comment
    ("remove a.b", 1, 8, "not a valid module name"),
    ("meter \u00b3/4", 1, 7, "expected a meter"),            # a superscript is a digit to str.isdigit, not to int
    # float() and int() read these, which no other number of the language takes (the song audit):
    ("tempo \u0661\u0662\u0660", 1, 7, "expected a number of beats per minute"),   # Arabic-Indic 120
    ("length 1_6", 1, 8, "expected a whole number of bars"),
    ('pattern kb "c4" legato=\u0660.5', 1, 24, "expected a number of legato"),
    # over 4300 digits, int() raises: they were tracebacks
    ("meter 1" + "0" * 4400 + "/4", 1, 7, "expected a meter"),
    ("require synthcli>=1" + "0" * 4400, 1, 9, "expected a package requirement"),
    ("map cc 64 v.level", 1, 8, "controller 64 is the sustain pedal"),
    ("map cc 123 v.level 0 1", 1, 8, "controller 123 is all notes off"),
])
def test_syntax_errors_name_line_and_column(text, line, col, words):
    with pytest.raises(SynthError) as info:
        parse_text("# header\n" * (line - 1) + text, source="x.patch")
    err = info.value
    assert (err.source, err.line, err.col) == ("x.patch", line, col)
    assert words in err.message
    assert str(err).startswith(f"x.patch:{line}:{col}: ")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        parse_text(text)
    except SynthError as err:
        assert err.line is not None and "\n" not in str(err)


@pytest.mark.parametrize("word, names, expected", [
    ("vfc", ["vco", "vcf", "vca"], "vcf"),        # a swap of neighbours is one edit
    ("ladr", ["adsr", "ladder", "lfo"], "ladder"),  # ties go to the same first letter
    ("os1", ["osc1", "f1"], "osc1"),
    ("zzz", ["add", "set"], None),
    ("lin", ["linear", "exp"], "linear"),           # a shortening: the one name it begins
    ("tri", ["sine", "saw", "square", "triangle", "pulse"], "triangle"),
    ("s", ["sine", "saw"], None),                   # one letter says too little
    ("sq", ["square", "squash"], None),             # and so does a prefix of two names
    ("legato", ["legato", "vel"], None),            # never the word itself: it is wrong some other way
    ("Legato", ["legato", "vel"], "legato"),        # but its case, yes
])
def test_suggestions_pick_the_likely_typo(word, names, expected):
    assert did_you_mean(word, names) == (f", did you mean '{expected}'?" if expected else "")


@pytest.mark.parametrize("options, message", [
    ("legato", "'legato' needs a value: write legato=VALUE"),
    ("vel= swing=0.6", "'vel' needs a value: write vel=VALUE"),
    ("scale=", "'scale' needs a value: write scale=VALUE"),
    ("legato = 0.5", "write legato=VALUE, without spaces around '='"),
    ("swing =0.6", "write swing=VALUE, without spaces around '='"),
    ("swingunit= 8", "write swingunit=VALUE, without spaces around '='"),
])
def test_a_pattern_option_without_its_value_says_so_and_suggests_not_itself(options, message):
    """'legato = 0.5' said "got 'legato', did you mean 'legato'?"."""
    with pytest.raises(SynthError) as info:
        parse_line(f'pattern kb "c4 e4" {options}', 4)
    assert str(info.value) == f"4:20: {message}"


@pytest.mark.parametrize("params, col, message", [
    ("freq = 3", 11, "write freq=VALUE, without spaces around '='"),
    ("freq =3", 11, "write freq=VALUE, without spaces around '='"),
    ("freq= 3", 11, "write freq=VALUE, without spaces around '='"),
    ("wave=saw freq= 3", 20, "write freq=VALUE, without spaces around '='"),
    ("freq", 11, "expected param=value, got 'freq'"),
    ("=3", 11, "expected param=value, got '=3'"),
])
def test_an_adds_parameter_spaced_around_its_equals_says_so(params, col, message):
    """'add vco o freq = 3' said "expected param=value, got 'freq'", which
    reads as if freq were wrong."""
    with pytest.raises(SynthError) as info:
        parse_line(f"add vco o {params}", 2)
    assert str(info.value) == f"2:{col}: {message}"


@pytest.mark.parametrize("text, col", [("set o.freq=3", 11), ("set o.freq = 3", 12), ("set o.freq =3", 12)])
def test_a_set_written_with_an_equals_says_set_takes_none(text, col):
    with pytest.raises(SynthError) as info:
        parse_line(text, 3)
    assert str(info.value) == f"3:{col}: 'set' takes no '=': write 'set NAME.PARAM VALUE'"
    assert parse_line('set s.file "take=2.wav"').value == '"take=2.wav"'
    assert parse_line("set s.file take=2.wav").value == "take=2.wav"     # as it always was (the review)


def test_a_huge_word_is_quoted_back_cut():
    """A 60,000-character paste (or OSC message) took 1.8 s to compare with
    every command and came back whole, 60 KB on one line."""
    with pytest.raises(SynthError) as caught:
        parse_line("x" * 60000)
    message = caught.value.message
    assert len(message) <= 400 and message.startswith("unknown command 'xxx")
    assert f"[... {60000 + len('unknown command ') + 2 - 370} characters ...]" in message
    assert did_you_mean("x" * 60000, ["add", "set"]) == ""


def test_the_controllers_map_refuses_are_those_the_keyboard_sends_for_itself():
    from synthcli.language.parser import KEYBOARD_CONTROLLERS
    from synthcli.midi.file import ALL_NOTES_OFF, ALL_SOUND_OFF, RESET_CONTROLLERS, SUSTAIN
    assert {SUSTAIN, ALL_SOUND_OFF, ALL_NOTES_OFF, RESET_CONTROLLERS} <= set(KEYBOARD_CONTROLLERS)
    assert set(KEYBOARD_CONTROLLERS) == {0, 32, 64, *range(120, 128)}   # bank select and the channel mode messages
    assert parse_text("map cc 64 off")[0].target is None    # unmapping one (from an older file) still works
