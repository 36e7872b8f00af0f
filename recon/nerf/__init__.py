"""The ``nerf`` stage: nerfacto trained through nerfstudio as a library, ending in a metric mesh.

    data.py      posed photos -> a downscaled nerfstudio dataset inside the run folder
    settings.py  detail presets from the machine (rays, image size, steps), the CPU refusal
    training.py  the trainer (progress, metrics, cancel, checkpoints, resume)
    model.py     loading a trained model, rendering a camera, nerfstudio <-> world frames
    mesh.py      depth rendered from the training views, TSDF-fused into the world frame
    stage.py     the StageSpec
"""
