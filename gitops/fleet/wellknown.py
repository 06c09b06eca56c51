"""Label and annotation keys shared by every layer that reads or writes cluster objects.

Part of the model layer. The pool label is Cluster API's (it syncs the ``node.cluster.x-k8s.io``
domain from Machines to Nodes); the ``fleet.gitops.io`` annotations record, on the objects
themselves, what the controller did and why, so that a restart can resume from them.
"""

CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
POOL_LABEL = "node.cluster.x-k8s.io/pool"
ZONE_LABEL = "topology.kubernetes.io/zone"
MACHINE_ANNOTATION = "cluster.x-k8s.io/machine"  # on Nodes: the Machine that owns them

PREFIX = "fleet.gitops.io/"
POOL_ANNOTATION = PREFIX + "pool"
IMAGE_ANNOTATION = PREFIX + "image"
PLAN_ID_ANNOTATION = PREFIX + "plan-id"
REPLACES_ANNOTATION = PREFIX + "replaces"  # on a replacement Machine: the node it replaces
PHASE_ANNOTATION = PREFIX + "phase"  # planned, provisioning, ready, cordoned, draining, retired
FAILED_ANNOTATION = PREFIX + "failed"  # reason a replacement or drain failed
QUARANTINE_LABEL = PREFIX + "quarantined"
CORDONED_BY_ANNOTATION = PREFIX + "cordoned-by"  # set when the controller cordoned the node

# Node facts beyond nodeInfo. A pool's fingerprint hashes the four nodeInfo facts, every label
# under these prefixes (what GPU Feature Discovery, Node Feature Discovery and Talos publish
# about the driver, the kernel and the system extensions) and every label and annotation an
# image of the fleet declares. The GPU Operator's upgrade-state label is excluded: it is a
# process, not a fact of the image.
FACT_LABEL_PREFIXES = (
    "nvidia.com/cuda.",
    "feature.node.kubernetes.io/kernel-",
    "feature.node.kubernetes.io/system-os_release.",
    "extensions.talos.dev/",
)
GPU_DRIVER_UPGRADE_LABEL = "nvidia.com/gpu-driver-upgrade-state"
GPU_DRIVER_UPGRADE_DONE = "upgrade-done"

PHASES = ("planned", "provisioning", "ready", "cordoned", "draining", "retired")
DRAIN_STARTED_ANNOTATION = PREFIX + "drain-started"  # on a Node: when its drain began (epoch s)
DRAIN_BLOCKED_ANNOTATION = PREFIX + "drain-blocked-by"  # on a Node: the PDB blocking its drain

# On a MachineDeployment gitops rolls (MachineDeployment mode): the image it was last pointed at
# is IMAGE_ANNOTATION; the template and image it pointed at before (what a rollback points back
# at), and the template the content-hashed clones are named after.
PREVIOUS_TEMPLATE_ANNOTATION = PREFIX + "previous-template"
PREVIOUS_IMAGE_ANNOTATION = PREFIX + "previous-image"
TEMPLATE_BASE_ANNOTATION = PREFIX + "template-base"


def standalone_machine_labels(cluster: str, pool: str) -> dict[str, str]:
    """Every label gitops puts on a Machine it creates itself (standalone mode): what a
    MachineSet's selector must not match, or Cluster API would adopt the Machine."""
    return {CLUSTER_NAME_LABEL: cluster, POOL_LABEL: pool}
