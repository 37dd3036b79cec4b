"""The release role's input check (plugin_utils/release.py): one sentence per bad input, naming its value; and its
environment file, written so that systemd reads back exactly the values given (filter/release.py)."""

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.filter.release import env_file_lines
from ansible_collections.fleet.deployer.plugins.plugin_utils.release import input_errors


@pytest.mark.parametrize("version, port, keep, errors", [
    ("1.1.0", 8000, 3, []),
    ("1.1.0-rc.1+build_7", "8000", "2", []),  # extra-vars arrive as strings
    (1.1, 65535, 2, []),
    ("-1.1.0", 8000, 3, ['release_version="-1.1.0" is not a version (letters, digits, . _ + -).']),
    ("1.1.0; rm -rf /", 8000, 3, ['release_version="1.1.0; rm -rf /" is not a version (letters, digits, . _ + -).']),
    ("", 8000, 3, ['release_version="" is not a version (letters, digits, . _ + -).']),
    ("1.1.0\n", 8000, 3, ['release_version="1.1.0\\n" is not a version (letters, digits, . _ + -).']),
    ("1.1.0", date(2026, 11, 27), 3, ['release_port="2026-11-27" is not a whole number (a TCP port, 1 to 65535).']),  # YAML reads dates
    ("1.1.0", 0, 3, ["release_port=0 is out of range: a TCP port must be from 1 to 65535."]),
    ("1.1.0", 65536, 3, ["release_port=65536 is out of range: a TCP port must be from 1 to 65535."]),
    ("1.1.0", "http", 3, ['release_port="http" is not a whole number (a TCP port, 1 to 65535).']),
    ("1.1.0", True, 3, ["release_port=true is not a whole number (a TCP port, 1 to 65535)."]),
    ("1.1.0", 8000, 1, ["release_keep=1 must be 2 or more (the current and the previous release)."]),
    ("1.1.0", 8000, "all", ['release_keep="all" must be 2 or more (the current and the previous release).']),
    ("x y", None, None, ['release_version="x y" is not a version (letters, digits, . _ + -).',
                         "release_port=null is not a whole number (a TCP port, 1 to 65535).",
                         "release_keep=null must be 2 or more (the current and the previous release)."]),
])
def test_input_errors(version, port, keep, errors):
    assert input_errors(version, port, keep) == errors


def systemd_env_file(text):
    """The values of an EnvironmentFile= as systemd 252 reads them (parse_env_file_internal() in env-file.c, the
    rules of `man systemd.exec`), for the lines env_file_lines writes: KEY="..." where a backslash before one of
    \\ " ` $ yields that character, any other backslash is kept, a backslash before a newline joins the lines and
    anything else (newlines included) is taken as it is. systemd's own parser is asked below where it can be, and
    Molecule's test_an_environment_value_reaches_the_service_exactly reads the service's /proc/<pid>/environ."""
    values, pos = {}, 0
    while pos < len(text):
        if text[pos] in '#;\n':
            pos = text.find('\n', pos) + 1 or len(text)
            continue
        key = text[pos:].split('="', 1)[0]
        pos += len(key) + 2
        value = []
        while text[pos] != '"':
            if text[pos] == '\\':
                escaped = text[pos + 1]
                value.append('' if escaped == '\n' else escaped if escaped in '"\\`$' else '\\' + escaped)
                pos += 2
            else:
                value.append(text[pos])
                pos += 1
        values[key] = ''.join(value)
        pos = text.find('\n', pos) + 1 or len(text)
    return values


ROUND_TRIP = {
    'PLAIN': 'caf\u00e9 "q" $HOME \\ x',
    'LINES': 'one\ntwo\\\nthree\r\n',
    'QUOTES': "'single' \"double\" `tick` ${BRACED}",
    'SPACES': '  leading and trailing  ',
    'EMPTY': '',
    'HASH': '# not a comment; nor this',
    'NUMBER': 20,
}


def test_env_file_lines_read_back_exactly_as_systemd_reads_them():
    lines = env_file_lines(ROUND_TRIP)
    text = '# {{ ansible_managed }}\n' + ''.join(line + '\n' for line in lines)

    assert systemd_env_file(text) == {key: str(value) for key, value in ROUND_TRIP.items()}
    assert 'PLAIN="caf\u00e9 \\"q\\" \\$HOME \\\\ x"' in lines  # UTF-8 as it is, not caf\\u00e9


# systemd's parser of environment files (parse_env_file_internal(), the one behind EnvironmentFile= too), runnable
# without systemd as PID 1: the environment.d generator reads a folder of such files and prints the result.
ENVIRONMENT_D_GENERATOR = Path('/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator')


def c_unescaped(text):
    """A value as the generator prints it (C escapes, double quotes when needed) back to the value itself."""
    if not text.startswith('"'):
        return text
    return re.sub(r'\\([0-7]{3}|.)', lambda match: chr(int(match.group(1), 8)) if len(match.group(1)) == 3
                  else {'n': '\n', 'r': '\r', 't': '\t'}.get(match.group(1), match.group(1)), text[1:-1])


@pytest.mark.skipif(not ENVIRONMENT_D_GENERATOR.exists(), reason='systemd is not installed here')
def test_systemds_own_parser_reads_the_env_file_lines_back_exactly(tmp_path):
    # Unlike EnvironmentFile=, environment.d expands $VAR and drops an empty value: those two stay with the test above.
    values = {key: str(value) for key, value in ROUND_TRIP.items() if str(value) and '$' not in str(value)}
    values['CONTROL'] = 'tab\tescape\x1b[0m'
    (tmp_path / 'environment.d').mkdir()
    (tmp_path / 'environment.d' / 'release.conf').write_text(''.join(line + '\n' for line in env_file_lines(values)))

    printed = subprocess.run([str(ENVIRONMENT_D_GENERATOR)], env={'XDG_CONFIG_HOME': str(tmp_path), 'HOME': '/'},
                             capture_output=True, text=True, check=True)

    read_back = dict(line.split('=', 1) for line in printed.stdout.splitlines())
    assert {key: c_unescaped(read_back.get(key, '<not read>')) for key in values} == values, printed.stderr


@pytest.mark.parametrize('environment, message', [
    ({'X\nLD_PRELOAD': '/tmp/evil.so'}, 'release_environment key="X\\nLD_PRELOAD" is not an environment variable name'),
    ({'A': 's3cr3t\0'}, 'release_environment["A"] holds a NUL character'),  # the value may be a secret: not shown
    ({'A': None}, 'release_environment["A"] is not text'),
])
def test_env_file_lines_refuse_what_no_environment_holds(environment, message):
    with pytest.raises(AnsibleFilterError, match='^' + re.escape(message)):
        env_file_lines(environment)
