"""The benchmark's floor as a Pulumi program (see `mesh.bench.FLOOR_PROGRAM`)."""

from mesh import bench

bench.declare_floor()
