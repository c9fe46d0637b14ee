"""Plain values shared by every role: file status, block locations, datanode info."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dfs.rpc.protocol import DATA_TRANSFER


@dataclass(frozen=True)
class FileStatus:
    path: str
    type: str                 # "file" | "directory"
    size: int
    replication: int
    block_size: int
    mode: int                 # permission bits, e.g. 0o644
    owner: str
    group: str
    mtime: float
    ctime: float = 0.0
    inode_id: int = 0
    children: int = 0
    subdirs: int = 0          # directories: entries that are directories themselves

    @property
    def is_dir(self) -> bool:
        return self.type == "directory"

    def to_json(self) -> dict:
        d = asdict(self)
        d["mode"] = f"{self.mode:04o}"
        d.pop("inode_id")
        return d


@dataclass(frozen=True)
class BlockLocation:
    """One block of a file, in the shape of Hadoop's BlockLocation (SPEC §3 locate --json)."""

    offset: int
    length: int
    block_id: int
    names: list[str] = field(default_factory=list)   # host:port, nearest first
    racks: list[str] = field(default_factory=list)
    corrupt: bool = False

    @property
    def hosts(self) -> list[str]:
        return [n.rpartition(":")[0] for n in self.names]

    def to_json(self) -> dict:
        return {
            "offset": self.offset, "length": self.length, "block_id": self.block_id,
            "hosts": self.hosts, "names": list(self.names), "racks": list(self.racks),
        }


@dataclass
class DatanodeDescriptor:
    """What the namenode knows of one datanode. Mutated only by Membership."""

    uuid: str
    address: str
    rack: str = "/default-rack"
    capacity: int = 0
    used: int = 0
    remaining: int = 0
    xceivers: int = 0
    blocks: int = 0
    last_heartbeat: float = 0.0
    registered_at: float = 0.0
    admin_state: str = "normal"   # normal | decommissioning | decommissioned
    reported: bool = False        # its full block report since it registered has come
    # Why its data dir is dead ("" while it works) and since when (the namenode's clock):
    # it holds no replica and takes none until it restarts, whatever space it reports.
    storage_failed: str = ""
    storage_failed_at: float = 0.0
    # The data-transfer protocol it registered with (dfs/rpc/protocol.py): the Register
    # service passes what the node sent (0 from one that says none); ours by default.
    protocol: int = DATA_TRANSFER

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]
