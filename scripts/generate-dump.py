#!/usr/bin/env python3
"""Generates a synthetic `kubectl cluster-info dump` with the quirks of real dumps (DESIGN.md section 2).

Forms:
  directory  the --output-directory layout, packed as --archive tar.gz (default) or zip, under --prefix
  stdout     the one-file stdout form (concatenated List documents with log blocks inline)

Quirks included: empty lists, an orphan pod folder (logs, no pod), a container whose log is only
`Request log error: ...`, an END marker glued to the last log line, 2- and 4-space JSON, items without `kind`,
klog lines without a year, CRI lines (with a P partial line), RFC 3339 and JSON log lines, multi-line stack traces.

Output is deterministic for a given --seed. A summary of what was generated (counts) is printed as JSON.
"""
import argparse
import gzip
import io
import json
import random
import sys
import tarfile
import zipfile

LIST_FILES = [
    ("events.json", "EventList"), ("replication-controllers.json", "ReplicationControllerList"),
    ("services.json", "ServiceList"), ("daemonsets.json", "DaemonSetList"),
    ("deployments.json", "DeploymentList"), ("replicasets.json", "ReplicaSetList"), ("pods.json", "PodList"),
]


def dumps(document, indent):
    return json.dumps(document, indent=indent) + "\n"


def log_lines(rng, namespace, pod, container, count):
    """Log lines in six styles; returns (raw lines, lines after CRI partial lines are joined, how many of those
    carry a recognisable timestamp)."""
    lines = []
    stamped = 0
    partials = 0
    for index in range(count):
        second = index % 60
        style = index % 6
        request = f"{rng.getrandbits(64):016x}"
        if style == 0 and index % 12 == 0:  # a CRI line split into a partial (P) and its final part (F)
            lines.append(f"2022-11-29T20:55:{second:02d}.82649547Z stderr P {container} long request {index} "
                         f"method=POST path=/api/v1/namespaces/{namespace}/orders/{index} request_id={request} ")
            lines.append(f"2022-11-29T20:55:{second:02d}.82649548Z stderr F body_bytes=48213 status=201 "
                         "continues and ends")
            partials += 1
        elif style == 0:
            lines.append(f"2022-11-29T20:55:{second:02d}.82649547Z stderr F {container} request {index} handled "
                         f"method=GET path=/api/v1/namespaces/{namespace}/orders/{index} status=200 "
                         f"duration_ms={rng.randint(1, 900)} request_id={request}")
        elif style == 1:
            lines.append(f"I1129 20:55:{second:02d}.826495       1 main.go:{40 + index}] {pod} reconciled item {index} "
                         f"controller=\"deployment\" namespace=\"{namespace}\" reconcileID=\"{request}\" "
                         f"duration=\"{rng.randint(1, 90)}ms\"")
        elif style == 2:
            lines.append(json.dumps({"ts": f"2022-11-29T20:55:{second:02d}Z", "level": "info", "msg": f"tick {index}",
                                     "logger": f"{container}.scheduler", "request_id": request,
                                     "queue_depth": rng.randint(0, 500), "caller": "worker/loop.go:212"}))
        elif style == 3:
            lines.append(f"time=2022-11-29T20:55:{second:02d}Z level=warn msg=\"slow {index}\" component=db "
                         f"query_id={request} duration={rng.randint(1, 9)}.{rng.randint(0, 99)}s rows={rng.randint(0, 5000)}")
        elif style == 4:  # a multi-line stack trace: only its first line has a timestamp
            lines.append(f"2022-11-29T20:55:{second:02d}.000Z panic: item {index} failed: runtime error: invalid memory "
                         "address or nil pointer dereference")
            lines.append("goroutine 1 [running]:")
            lines.append(f"\tmain.(*worker).handle(0xc000{request[:6]}, {{0x1a2b3c, 0xc0001b2d40}})")
        else:
            lines.append(f"plain line {index} of {namespace}/{pod}/{container} {rng.randint(0, 10**6)} "
                         f"cache hits={rng.randint(0, 10**5)} misses={rng.randint(0, 10**3)} evictions=0 size=64MiB")
        stamped += style != 5
    return lines, len(lines) - partials, stamped


def make_pod(namespace, name, node, containers, init_containers, restarts, phase="Running"):
    def status(container, ready):
        return {"name": container, "image": f"example/{container}:1.0", "ready": ready, "restartCount": restarts,
                "state": {"running": {"startedAt": "2022-11-29T20:00:00Z"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1}} if restarts else {}}
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                     "labels": {"app": name.rsplit("-", 1)[0], "tier": "backend"},
                     "creationTimestamp": "2022-11-29T19:00:00Z"},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": f"example/{c}:1.0"} for c in containers],
                 "initContainers": [{"name": c, "image": f"example/{c}:1.0"} for c in init_containers]},
        "status": {"phase": phase, "containerStatuses": [status(c, True) for c in containers],
                   "initContainerStatuses": [status(c, False) for c in init_containers]},
    }


def generate(args):
    rng = random.Random(args.seed)
    files = {}  # relative path -> text (directory form)
    stdout_parts = []
    summary = {"namespaces": 0, "pods": 0, "containers": 0, "log_lines": 0, "timestamped_lines": 0, "orphan_pods": 0,
               "log_errors": 0, "resources": 2, "warning_events": 0, "phases": {}, "partial_lines": 0}
    nodes = {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
             "items": [{"metadata": {"name": f"node-{i}"}, "status": {"nodeInfo": {"kubeletVersion": "v1.25.4"}}}
                       for i in range(2)]}
    files["nodes.json"] = dumps(nodes, 4)
    stdout_parts.append(dumps(nodes, 4))
    for ns_index in range(args.namespaces):
        namespace = f"ns-{ns_index}"
        summary["namespaces"] += 1
        indent = 2 if ns_index % 2 else 4
        pods = [make_pod(namespace, f"app{ns_index}-{p}", f"node-{p % 2}", ["main", "sidecar"] if p % 2 else ["main"],
                         ["init"] if p % 3 == 0 else [], p % 4, "Pending" if p % 5 == 4 else "Running")
                for p in range(args.pods_per_namespace)]
        for pod in pods:
            phase = pod["status"]["phase"]
            summary["phases"][phase] = summary["phases"].get(phase, 0) + 1
        for file_name, kind in LIST_FILES:
            items = pods if kind == "PodList" else []
            if kind == "EventList" and ns_index == 0:
                items = [{"metadata": {"name": "evt-1", "namespace": namespace}, "type": "Warning",
                          "reason": "BackOff", "message": "Back-off restarting failed container", "count": 3,
                          "involvedObject": {"kind": "Pod", "name": pods[0]["metadata"]["name"]}}] if pods else []
            summary["resources"] += len(items)
            summary["warning_events"] += sum(1 for item in items if item.get("type") == "Warning")
            document = {"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items}
            files[f"{namespace}/{file_name}"] = dumps(document, indent)
            stdout_parts.append(dumps(document, indent))
        for pod_index, pod in enumerate(pods + [None]):
            orphan = pod is None
            name = f"ghost{ns_index}" if orphan else pod["metadata"]["name"]
            containers = ["main"] if orphan else [c["name"] for c in pod["spec"]["initContainers"] +
                                                  pod["spec"]["containers"]]
            summary["orphan_pods" if orphan else "pods"] += 1
            blocks = []
            for container in containers:
                summary["containers"] += 1
                if container == "sidecar" and pod_index == 1:
                    body = ["Request log error: the server rejected our request for an unknown reason"]
                    summary["log_errors"] += 1
                else:
                    body, joined, stamped = log_lines(rng, namespace, name, container, args.lines_per_container)
                    summary["log_lines"] += joined
                    summary["partial_lines"] += len(body) - joined
                    summary["timestamped_lines"] += stamped
                start = f"==== START logs for container {container} of pod {namespace}/{name} ===="
                end = f"==== END logs for container {container} of pod {namespace}/{name} ===="
                if pod_index == 0 and container == containers[-1] and body:
                    blocks.append("\n".join([start] + body[:-1] + [body[-1] + end]) + "\n")  # glued END marker
                else:
                    blocks.append("\n".join([start] + body + [end]) + "\n")
            files[f"{namespace}/{name}/logs.txt"] = "".join(blocks)
            stdout_parts.append("".join(blocks))
    return files, "".join(stdout_parts), summary


def pack(args, files, stdout_text):
    if args.form == "stdout":
        return stdout_text.encode()
    prefix = args.prefix.strip("/")
    paths = {(prefix + "/" if prefix else "") + path: text.encode() for path, text in files.items()}
    buffer = io.BytesIO()
    if args.archive == "zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(paths):
                archive.writestr(zipfile.ZipInfo(path, date_time=(2022, 11, 29, 20, 0, 0)), paths[path],
                                 compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(paths):
            info = tarfile.TarInfo(path)
            info.size = len(paths[path])
            info.mtime = 1669752000
            archive.addfile(info, io.BytesIO(paths[path]))
    return gzip.compress(buffer.getvalue(), mtime=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    parser.add_argument("--form", choices=["directory", "stdout"], default="directory")
    parser.add_argument("--archive", choices=["tar.gz", "zip"], default="tar.gz")
    parser.add_argument("--prefix", default="cluster-dump", help="leading folder inside the archive")
    parser.add_argument("--namespaces", type=int, default=3)
    parser.add_argument("--pods-per-namespace", type=int, default=4)
    parser.add_argument("--lines-per-container", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    files, stdout_text, summary = generate(args)
    data = pack(args, files, stdout_text)
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(args.out, "wb") as output:
            output.write(data)
        summary["bytes"] = len(data)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
