"""Every kind of problem the loader reports: message, hint and file:line:col, all at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.fleet import FleetError, load
from gitops.fleet.loader import MAX_FILE_BYTES
from tests.unit.fleet.conftest import FLEET, cluster

POOL = "    - name: workers\n      image: img-2\n      replicas: 3\n      zones: [a, b]\n"


def pools(extra: str = "", **replace: str) -> str:
    text = POOL + extra
    for old, new in replace.items():
        text = text.replace(old.replace("_", " "), new)
    return text


# (id, files to write over the valid base, expected "path:line:col", expected message fragment,
#  expected hint fragment)
CASES = [
    (
        "unknown-key-with-suggestion",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      replica: 3\n")},
        "clusters/prod.yaml:13:7",
        "unknown key 'replica' in spec.nodePools[0]",
        "did you mean 'replicas'?",
    ),
    (
        "unknown-top-level-key",
        {"clusters/prod.yaml": cluster("prod") + "status: {}\n"},
        "clusters/prod.yaml:13:1",
        "unknown key 'status' in document",
        "allowed: apiVersion, kind, metadata, spec",
    ),
    (
        "wrong-type-integer",
        {
            "clusters/prod.yaml": cluster(
                "prod", pools=POOL.replace("replicas: 3", "replicas: three")
            )
        },
        "clusters/prod.yaml:11:17",
        "spec.nodePools[0].replicas must be an integer, got string 'three'",
        "write a whole number like 3",
    ),
    (
        "label-value-needs-quotes",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      labels: {gpu: true}\n")},
        "clusters/prod.yaml:13:21",
        "spec.nodePools[0].labels.gpu must be a string, got boolean true",
        'quote it: "true"',
    ),
    (
        "missing-required-key",
        {"clusters/prod.yaml": cluster("prod", pools=POOL.replace("      replicas: 3\n", ""))},
        "clusters/prod.yaml:9:7",
        "missing required key 'replicas' in spec.nodePools[0]",
        "add replicas:",
    ),
    (
        "unresolved-image",
        {"clusters/prod.yaml": cluster("prod", pools=POOL.replace("img-2", "img-3"))},
        "clusters/prod.yaml:10:14",
        "pool 'workers': unknown image 'img-3'",
        "did you mean 'img-2'?",
    ),
    (
        "duplicate-cluster-names-both-places",
        {"clusters/prod-copy.yaml": cluster("prod")},
        "clusters/prod.yaml:4:9",
        "duplicate cluster 'prod' (also at clusters/prod-copy.yaml:4)",
        "rename one of them",
    ),
    (
        "duplicate-pool-names",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + POOL)},
        "clusters/prod.yaml:13:13",
        "duplicate pool 'workers' in cluster 'prod' (also at clusters/prod.yaml:9)",
        "rename one of them",
    ),
    (
        "cluster-in-no-wave",
        {"clusters/edge.yaml": cluster("edge", "edge")},
        "clusters/edge.yaml:5:3",
        "cluster 'edge' is in no wave",
        "ring: prod",
    ),
    (
        "cluster-in-two-waves",
        {
            "fleet.yaml": FLEET.replace(
                "        clusters: {matchLabels: {ring: prod}}\n",
                "        clusters: {matchExpressions: [{key: ring, operator: Exists}]}\n",
            )
        },
        "clusters/canary.yaml:5:3",
        "cluster 'canary' is in waves 'canary' and 'prod'",
        "disjoint",
    ),
    (
        "wave-selects-no-cluster",
        {"clusters/canary.yaml": None, "clusters/prod.yaml": cluster("prod")},
        "fleet.yaml:24:19",
        "wave 'canary' selects no cluster",
        "fix its selector",
    ),
    (
        "surge-and-unavailable-both-zero",
        {
            "clusters/prod.yaml": cluster(
                "prod", pools=POOL + "      update: {maxSurge: 0, maxUnavailable: 10%}\n"
            )
        },
        "clusters/prod.yaml:13:7",
        "maxSurge and maxUnavailable both resolve to 0 for 3 replicas",
        "set maxSurge to at least 1",
    ),
    (
        "bad-duration",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      update: {soak: 5 minutes}\n")},
        "clusters/prod.yaml:13:22",
        "spec.nodePools[0].update.soak: '5 minutes' is not a duration",
        "",
    ),
    (
        "bad-percentage",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      update: {maxSurge: 150%}\n")},
        "clusters/prod.yaml:13:26",
        "'150%' is not a percentage",
        "",
    ),
    (
        "bad-label-value",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      labels: {tier: -bad-}\n")},
        "clusters/prod.yaml:13:15",
        "'-bad-' is not a valid label value",
        "",
    ),
    (
        "bad-label-key",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      labels: {'a b': x}\n")},
        "clusters/prod.yaml:13:15",
        "'a b' is not a valid label key",
        "",
    ),
    (
        "unknown-api-version",
        {"clusters/prod.yaml": cluster("prod").replace("v1alpha1", "v1beta9")},
        "clusters/prod.yaml:1:13",
        "unknown apiVersion 'fleet.gitops.io/v1beta9'",
        "use fleet.gitops.io/v1alpha1",
    ),
    (
        "unknown-kind",
        {"clusters/prod.yaml": cluster("prod").replace("kind: Cluster", "kind: Clusters")},
        "clusters/prod.yaml:2:7",
        "unknown kind 'Clusters'",
        "did you mean 'Cluster'?",
    ),
    (
        "kind-not-a-string",
        {"clusters/prod.yaml": cluster("prod").replace("kind: Cluster", "kind: [Cluster]")},
        "clusters/prod.yaml:2:7",
        "unknown kind ['Cluster']",
        "did you mean 'Cluster'?",
    ),
    (
        "duplicate-yaml-key",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      replicas: 4\n")},
        "clusters/prod.yaml:13:7",
        "duplicate key 'replicas' (first at line 11, column 7)",
        "keep one of them",
    ),
    (
        "not-utf8",
        {"clusters/prod.yaml": cluster("prod").encode() + b"# caf\xe9\n"},
        "clusters/prod.yaml:13:6",
        "file is not UTF-8 (byte 0xe9)",
        "save it as UTF-8",
    ),
    (
        "yaml-syntax-error",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      zones: [a, b\n")},
        "clusters/prod.yaml:14:1",
        "YAML syntax error",
        "fix the YAML syntax",
    ),
    (
        "alias-bomb",
        {
            "clusters/bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                f" *{chr(97 + i)}, *{chr(97 + i)}]\n"
                for i in range(6)
            )
        },
        "clusters/bomb.yaml:1:1",
        "refused: aliases expand",
        "alias bomb",
    ),
    (
        "recursive-alias",
        {"clusters/loop.yaml": "a: &a [*a]\n"},
        "clusters/loop.yaml:1:4",
        "recursive alias",
        "",
    ),
    (
        "version-skew",
        {
            "clusters/prod.yaml": cluster("prod").replace(
                "kubernetesVersion: v1.31.4", "kubernetesVersion: v1.30.2"
            )
        },
        "clusters/prod.yaml:10:14",
        "image 'img-2' has kubelet v1.31.4, outside the skew policy for control plane v1.30.2",
        "never newer",
    ),
    (
        "selector-operator-needs-values",
        {
            "fleet.yaml": FLEET.replace(
                "        clusters: {matchLabels: {ring: prod}}\n",
                "        clusters: {matchExpressions: [{key: ring, operator: In}]}\n",
            )
        },
        "fleet.yaml:26:39",
        "operator In needs a non-empty values list",
        "",
    ),
    (
        "document-not-a-mapping",
        {"clusters/list.yaml": "- just\n- a list\n"},
        "clusters/list.yaml:1:1",
        "a document must be a mapping",
        "",
    ),
    (
        "non-string-key",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      labels: {1: x}\n")},
        "clusters/prod.yaml:13:16",
        "key '1' is not a string",
        "quote the key",
    ),
    (
        "no-fleet-document",
        {"fleet.yaml": None},
        ".:1:1",
        "no Fleet document found",
        "add fleet.yaml",
    ),
    (
        "second-fleet-document",
        {"more/fleet.yaml": FLEET},
        "more/fleet.yaml:2:7",
        "a second Fleet document (the first is at fleet.yaml:2)",
        "keep one",
    ),
    (
        "zone-listed-twice",
        {"clusters/prod.yaml": cluster("prod", pools=POOL.replace("[a, b]", "[a, a]"))},
        "clusters/prod.yaml:12:14",
        "a zone is listed twice",
        "",
    ),
    (
        "machine-deployment-names-both",
        {
            "clusters/prod.yaml": cluster(
                "prod", pools=POOL + "      machineDeployment: {name: md, topology: md-0}\n"
            )
        },
        "clusters/prod.yaml:13:26",
        "machineDeployment has both of name and topology",
        "give exactly one",
    ),
    (
        "machine-deployment-names-neither",
        {"clusters/prod.yaml": cluster("prod", pools=POOL + "      machineDeployment: {}\n")},
        "clusters/prod.yaml:13:26",
        "machineDeployment has neither of name and topology",
        "give exactly one",
    ),
    (
        "image-fact-label-key-invalid",
        {
            "fleet.yaml": FLEET.replace(
                "      source: registry/img:v2\n",
                "      source: registry/img:v2\n"
                "      facts:\n        labels: {'nvidia.com/cuda driver': '550.1'}\n",
            )
        },
        "fleet.yaml:22:17",
        "is not a valid label key",
        "example.com/tier",
    ),
    (
        "image-fact-annotation-not-a-string",
        {
            "fleet.yaml": FLEET.replace(
                "      source: registry/img:v2\n",
                "      source: registry/img:v2\n"
                "      facts:\n        annotations: {extensions.talos.dev/schematic: 376567}\n",
            )
        },
        "fleet.yaml:22:55",
        "must be a string",
        "quote it",
    ),
    (
        "image-variable-without-topology",
        {
            "clusters/prod.yaml": cluster(
                "prod", pools=POOL + "      machineDeployment: {name: md, imageVariable: img}\n"
            )
        },
        "clusters/prod.yaml:13:26",
        "machineDeployment.imageVariable is only used with topology",
        "remove it",
    ),
    (
        "machine-deployment-rolled-by-two-pools",
        {
            "clusters/prod.yaml": cluster(
                "prod",
                pools=POOL
                + "      machineDeployment: {name: md}\n"
                + POOL.replace("workers", "more")
                + "      machineDeployment: {name: md}\n",
            )
        },
        "clusters/prod.yaml:18:26",
        "pool 'more': MachineDeployment 'md' is already rolled by pool 'workers' "
        "(at clusters/prod.yaml:13)",
        "give each pool its own",
    ),
]


@pytest.mark.parametrize(
    ("files", "where", "message", "hint"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_problem_is_reported_with_place_and_hint(
    make_repo: Callable[..., Path],
    files: dict[str, str | None],
    where: str,
    message: str,
    hint: str,
) -> None:
    root = make_repo(files)
    with pytest.raises(FleetError) as caught:
        load(root)
    rendered = [str(p) for p in caught.value.problems]
    matching = [r for r in rendered if r.startswith(where + ": ") and message in r]
    assert matching, f"no problem at {where} with {message!r}; got:\n" + "\n".join(rendered)
    assert hint in matching[0]


def test_all_problems_are_reported_at_once(make_repo: Callable[..., Path]) -> None:
    broken = POOL.replace("img-2", "img-9") + "      replica: 3\n"
    root = make_repo(
        {
            "clusters/prod.yaml": cluster("prod", pools=broken),
            "clusters/canary.yaml": cluster("canary", "canary").replace("v1.31.4", "1.31"),
        }
    )
    with pytest.raises(FleetError) as caught:
        load(root)
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "unknown image 'img-9'" in messages
    assert "unknown key 'replica'" in messages
    assert "kubernetesVersion" in messages
    # an invalid cluster still counts for its wave: no spurious "selects no cluster"
    assert "selects no cluster" not in messages


def test_file_over_size_limit(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"clusters/huge.yaml": "# pad\n" * (MAX_FILE_BYTES // 6 + 1)})
    with pytest.raises(FleetError) as caught:
        load(root)
    assert [str(p) for p in caught.value.problems] == [
        f"clusters/huge.yaml:1:1: file is {(MAX_FILE_BYTES // 6 + 1) * 6} bytes, over the limit "
        f"of {MAX_FILE_BYTES} (split it into several files)"
    ]


def test_symlink_outside_repository_is_refused(
    make_repo: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text(cluster("evil"))
    root = make_repo()
    os.symlink(outside, root / "clusters" / "evil.yaml")
    os.symlink(outside.parent, root / "linked-dir")
    with pytest.raises(FleetError) as caught:
        load(root)
    assert [str(p) for p in caught.value.problems] == [
        "clusters/evil.yaml:1:1: symlink points outside the repository (copy the file into the"
        " repository or list the link in .gitopsignore)",
        "linked-dir:1:1: symlink points outside the repository (copy the file into the"
        " repository or list the link in .gitopsignore)",
    ]


def test_symlink_inside_repository_is_read_once_at_its_real_place(
    make_repo: Callable[..., Path],
) -> None:
    root = make_repo({"clusters/prod.yaml": None, "real/prod.yaml": cluster("prod")})
    os.symlink(root / "real" / "prod.yaml", root / "clusters" / "prod.yaml")
    os.symlink(root / "real", root / "clusters" / "linked")
    fleet = load(root)
    assert [c.name for c in fleet.clusters] == ["canary", "prod"]
    assert fleet.sources["prod"] == "real/prod.yaml"


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FleetError) as caught:
        load(tmp_path / "missing")
    assert caught.value.problems[0].message == "not a directory"
