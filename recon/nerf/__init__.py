"""The ``nerf`` stage: nerfacto trained through nerfstudio as a library, ending in a metric mesh.

    data.py      posed photos -> a downscaled nerfstudio dataset inside the run folder
    settings.py  the stage config; detail presets from the machine (rays, image size, steps), the
                 CPU refusal
    nsconfig.py  nerfstudio's nerfacto config for a stage child (no viewer/wandb/eval/LPIPS download)
    training.py  the trainer (progress, metrics, cancel, checkpoints, resume)
    checkpoints.py  where checkpoints go (core's resumable-stage store, or a folder of the run)
    model.py     loading a trained model, rendering a camera, nerfstudio <-> world frames
    mesh.py      depth rendered from the training views, TSDF-fused into the world frame
    stage.py     the StageSpec
    method.py    the ``nerf`` method (poses, nerf, mesh, export)
"""
