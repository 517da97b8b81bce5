"""Autobahn|Testsuite helper for scripts/autobahn.sh (Python 2.7, as the testsuite needs).

    python2.7 scripts/autobahn_wstest.py run SITE_DIR SPEC URL OUTDIR
        Loads the spec template SPEC, points it at URL (the server's port is only known at run
        time) and at OUTDIR for reports, and runs `wstest -m fuzzingclient` on it, with the
        testsuite imported from SITE_DIR (a `pip install --target` directory).

    python2.7 scripts/autobahn_wstest.py summary INDEX_JSON
        Prints the number of cases per behaviour and every case that is not OK; exits 1 if any
        case FAILED.
"""
import json
import os
import site
import sys

BEHAVIOURS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def run(site_dir, spec_path, url, outdir):
    site.addsitedir(os.path.abspath(site_dir))
    with open(spec_path) as f:
        spec = json.load(f)
    for server in spec["servers"]:
        server["url"] = url
    spec["outdir"] = outdir
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    run_spec = os.path.join(outdir, "fuzzingclient.json")
    with open(run_spec, "w") as f:
        json.dump(spec, f, indent=2)
    from autobahntestsuite import wstest
    sys.argv = ["wstest", "--mode", "fuzzingclient", "--spec", run_spec]
    wstest.run()


def case_key(case_id):
    return [int(part) for part in case_id.split(".")]


# How the connection ended, as Autobahn judges it; reported apart from the case's behaviour.
CLOSE_NOTES = {
    "FAILED BY CLIENT": "the server had not closed TCP when the client gave up waiting and "
                        "dropped it (RFC 6455 prefers the server to close first)",
}


def summary(index_path):
    with open(index_path) as f:
        index = json.load(f)
    failed = 0
    for agent in sorted(index):
        cases = index[agent]
        counts = dict((b, 0) for b in BEHAVIOURS)
        closes = {}
        notable = []
        for case_id in sorted(cases, key=case_key):
            result = cases[case_id]
            behaviour = result.get("behavior", "?")
            close = result.get("behaviorClose", "?")
            counts[behaviour] = counts.get(behaviour, 0) + 1
            closes[close] = closes.get(close, 0) + 1
            if behaviour != "OK" or close not in ["OK", "INFORMATIONAL"] + list(CLOSE_NOTES):
                notable.append((case_id, behaviour, close, result.get("remoteCloseCode")))
        failed += counts.get("FAILED", 0)
        print("Autobahn|Testsuite fuzzingclient, agent %s: %d cases" % (agent, len(cases)))
        print("behaviour:")
        for behaviour in BEHAVIOURS + sorted(set(counts) - set(BEHAVIOURS)):
            print("  %-16s %4d" % (behaviour, counts[behaviour]))
        print("close behaviour:")
        for close in sorted(closes):
            note = CLOSE_NOTES.get(close)
            print("  %-16s %4d%s" % (close, closes[close], "  (%s)" % note if note else ""))
        if notable:
            print("cases not OK:")
        for case_id, behaviour, close, code in notable:
            print("  %-8s behaviour %-13s close %-16s server's close code %s"
                  % (case_id, behaviour, close, code))
    print("report: %s" % os.path.join(os.path.dirname(index_path), "index.html"))
    return 1 if failed else 0


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "run":
        run(*sys.argv[2:6])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "summary":
        return summary(sys.argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
