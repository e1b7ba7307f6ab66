"""Reads an INI file with configparser.ConfigParser() and its defaults — as
cqlsh reads cqlshrc — and prints, as JSON, every option of every section
(DEFAULT's under "DEFAULT") in file order: [section, option, raw value,
interpolated value or null when get() raises an InterpolationError].
A file configparser refuses prints {"error": "<exception class>"}.

With several files, prints one JSON line per file, in order.

Usage: ini_dump.py FILE...
"""
import configparser
import json
import sys


def main():
    for path in sys.argv[1:]:
        dump(path)


def dump(path):
    cp = configparser.ConfigParser()
    try:
        cp.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as e:
        print(json.dumps({"error": type(e).__name__}))
        return
    out = []
    # A section's own options, without DEFAULT's (which options() adds).
    sections = [(cp.default_section, cp.defaults())] + [(s, cp._sections[s]) for s in cp.sections()]
    for name, options in sections:
        for opt, raw in options.items():
            try:
                value = cp.get(name, opt)
            except configparser.InterpolationError:
                value = None
            out.append([name, opt, raw, value])
    print(json.dumps({"options": out}))


if __name__ == "__main__":
    main()
