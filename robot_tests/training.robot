*** Settings ***
Documentation     Training on the emulated boards: the generated firmware trains MCUNet-5FPS (new 2-class head,
...               the paper's 99 KB sparse-update scheme) on the `faces` dataset inside the SRAM budget, the
...               loss goes down, and every step agrees bit for bit with the host reference.
...               Run with: robot --outputdir results/robot robot_tests/training.robot
Library           emulation.robot.training.TrainingLibrary

*** Test Cases ***
Training On M7 Fits In 256 KB, Loss Decreases, Matches The Host
    [Documentation]    One epoch (140 steps) at 64x64 on m7; measured SRAM = ELF static + stack high-water.
    [Timeout]    15 minutes
    Train On Board    m7    model=mcunet-5fps    scheme=paper:99kb    dataset=faces    classes=2
    ...    resolution=64    epochs=1    lr=0.002    max_test=20
    Measured SRAM Should Be At Most    262144
    Measured SRAM Should Be Close To Predicted
    Loss Should Decrease
    Run Should Match The Host Reference
    Instructions Per Step Should Be Reported
    Instructions Per Step Should Be Exact

A Plan Too Large For The Board Fails Before Emulation
    ${msg}=    Plan Should Not Fit    m4    resolution=224
    Should Contain    ${msg}    board `m4`
