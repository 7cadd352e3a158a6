"""The papers' published numbers, transcribed from their tables, to print beside ours.

ASCON (MICCAI 2023): Table 1 (Mayo-2016 and Mayo-2020) and Table 2 (Mayo-2020
loss ablation): PSNR (dB), RMSE (x 1e-2, on the [0, 1] scale of [-1000, 2000]
HU) and SSIM (%), mean and std over the test slices. LIDnet (ACM MM 2021):
Table 2 (AP-50 / AP-75, %), Table 3 (ROI radiomics mean absolute differences;
overall PSNR, SSIM (%), RMSE) and Table 4 (CNN versus GAN variant of LIDnet-CPCE
on PE-CT). They compare with our numbers only on the same data set (the Mayo
and detection profiles); on the synthetic benchmark only the ordering of the
methods can be compared.
"""
from __future__ import annotations

__all__ = ["ASCON_TABLE1", "ASCON_TABLE2", "LIDNET_TABLE2", "LIDNET_TABLE3", "LIDNET_TABLE4", "ascon_rows"]

# method -> dataset -> (psnr, psnr_std, rmse_x100, rmse_std_x100, ssim_pct, ssim_std_pct)
ASCON_TABLE1: dict[str, dict[str, tuple[float, ...]]] = {
    "U-Net": {"mayo2016": (44.13, 1.19, 0.64, 0.12, 97.38, 1.09), "mayo2020": (47.67, 1.64, 0.43, 0.09, 99.19, 0.23)},
    "RED-CNN": {"mayo2016": (44.23, 1.26, 0.62, 0.09, 97.34, 0.86), "mayo2020": (48.05, 2.14, 0.41, 0.11, 99.28, 0.18)},
    "WGAN-VGG": {"mayo2016": (42.49, 1.28, 0.76, 0.12, 96.16, 1.30), "mayo2020": (46.88, 1.81, 0.46, 0.10, 98.15, 0.20)},
    "EDCNN": {"mayo2016": (43.14, 1.27, 0.70, 0.11, 96.45, 1.36), "mayo2020": (47.90, 1.27, 0.41, 0.08, 99.14, 0.17)},
    "DU-GAN": {"mayo2016": (43.06, 1.22, 0.71, 0.10, 96.34, 1.12), "mayo2020": (47.21, 1.52, 0.44, 0.10, 99.00, 0.21)},
    "CNCL": {"mayo2016": (43.06, 1.07, 0.71, 0.10, 96.68, 1.11), "mayo2020": (45.63, 1.34, 0.53, 0.11, 98.92, 0.59)},
    "ESAU-Net": {"mayo2016": (44.38, 1.26, 0.61, 0.09, 97.47, 0.87), "mayo2020": (48.31, 1.87, 0.40, 0.12, 99.30, 0.18)},
    "ASCON": {"mayo2016": (44.48, 1.32, 0.60, 0.10, 97.49, 0.86), "mayo2020": (48.84, 1.68, 0.37, 0.11, 99.32, 0.18)},
}
# row label (as in ldct_nb.train.grid) -> Mayo-2020 values, same layout
ASCON_TABLE2: dict[str, tuple[float, ...]] = {
    "L_MSE": (48.34, 2.22, 0.40, 0.11, 99.27, 0.18),
    "L_MSE + L_perceptual": (47.83, 1.99, 0.42, 0.10, 99.13, 0.19),
    "L_MSE + L_SSIM": (48.31, 1.87, 0.40, 0.12, 99.30, 0.18),
    "L_MSE + L_SSIM + L_global": (48.58, 2.12, 0.39, 0.10, 99.31, 0.17),
    "L_MSE + L_SSIM + L_local": (48.48, 2.37, 0.38, 0.11, 99.31, 0.18),
    "L_MSE + L_SSIM + L_global + L_local": (48.84, 1.68, 0.37, 0.11, 99.32, 0.18),
}
_LIDNET_METHODS = ("WGAN-VGG", "CPCE", "MAP-NN", "SSMS", "Res-HLF")
# dataset -> method -> (baseline AP-50, AP-75, Ours AP-50, AP-75)
LIDNET_TABLE2: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "pe_ct": dict(zip(_LIDNET_METHODS, [(74.56, 25.46, 74.59, 26.70), (74.60, 25.74, 75.69, 26.26),
                                        (75.03, 25.75, 76.79, 27.01), (73.16, 23.02, 74.07, 24.62),
                                        (74.34, 25.74, 76.44, 24.77)])),
    "l_ct_g": dict(zip(_LIDNET_METHODS, [(93.90, 46.15, 95.31, 48.14), (91.62, 35.89, 93.74, 46.67),
                                         (92.84, 45.04, 95.14, 45.53), (91.15, 38.76, 93.89, 44.00),
                                         (94.24, 47.74, 95.28, 48.90)])),
    "l_ct_a": dict(zip(_LIDNET_METHODS, [(91.51, 41.34, 91.31, 41.48), (88.01, 41.30, 89.76, 41.30),
                                         (86.98, 40.00, 91.44, 43.21), (84.02, 37.49, 88.50, 40.39),
                                         (89.32, 39.85, 90.60, 40.36)])),
}
# dataset -> row ("WGAN-VGG", "Ours-WGAN-VGG", ...) -> (correlation, homogeneity, energy, psnr, ssim_pct, rmse)
LIDNET_TABLE3: dict[str, dict[str, tuple[float, ...]]] = {
    "pe_ct": {
        "WGAN-VGG": (0.023, 0.038, 0.009, 27.49, 99.97, 0.046), "Ours-WGAN-VGG": (0.023, 0.058, 0.013, 35.51, 100.0, 0.017),
        "CPCE": (0.021, 0.045, 0.012, 26.34, 99.97, 0.049), "Ours-CPCE": (0.019, 0.034, 0.009, 31.76, 99.99, 0.028),
        "MAP-NN": (0.024, 0.045, 0.011, 27.33, 99.97, 0.043), "Ours-MAP-NN": (0.018, 0.038, 0.009, 31.85, 99.99, 0.027),
        "SSMS": (0.040, 0.138, 0.043, 33.89, 99.99, 0.021), "Ours-SSMS": (0.028, 0.087, 0.021, 31.86, 99.99, 0.027),
        "Res-HLF": (0.023, 0.107, 0.031, 31.35, 99.99, 0.030), "Ours-Res-HLF": (0.122, 0.106, 0.021, 32.11, 99.99, 0.027),
    },
    "l_ct_g": {
        "WGAN-VGG": (0.048, 0.068, 0.019, 26.74, 99.97, 0.049), "Ours-WGAN-VGG": (0.049, 0.076, 0.018, 30.94, 99.99, 0.032),
        "CPCE": (0.055, 0.090, 0.022, 28.45, 99.98, 0.042), "Ours-CPCE": (0.054, 0.078, 0.018, 29.90, 99.99, 0.035),
        "MAP-NN": (0.052, 0.078, 0.018, 23.37, 99.91, 0.077), "Ours-MAP-NN": (0.046, 0.077, 0.017, 30.70, 99.99, 0.032),
        "SSMS": (0.071, 0.109, 0.022, 24.55, 99.95, 0.061), "Ours-SSMS": (0.070, 0.101, 0.022, 29.84, 99.99, 0.035),
        "Res-HLF": (0.025, 0.080, 0.022, 32.30, 99.99, 0.027), "Ours-Res-HLF": (0.033, 0.063, 0.016, 31.67, 99.99, 0.026),
    },
    "l_ct_a": {
        "WGAN-VGG": (0.042, 0.085, 0.025, 27.18, 99.94, 0.049), "Ours-WGAN-VGG": (0.048, 0.104, 0.029, 29.13, 99.96, 0.042),
        "CPCE": (0.049, 0.109, 0.030, 26.30, 99.93, 0.057), "Ours-CPCE": (0.043, 0.105, 0.030, 28.01, 99.95, 0.047),
        "MAP-NN": (0.047, 0.102, 0.027, 28.20, 99.95, 0.046), "Ours-MAP-NN": (0.045, 0.101, 0.027, 28.45, 99.96, 0.045),
        "SSMS": (0.047, 0.125, 0.032, 27.56, 99.94, 0.049), "Ours-SSMS": (0.046, 0.105, 0.030, 25.85, 99.94, 0.057),
        "Res-HLF": (0.036, 0.105, 0.029, 29.70, 99.96, 0.049), "Ours-Res-HLF": (0.054, 0.097, 0.026, 30.78, 99.98, 0.034),
    },
}
# variant -> (AP-50, AP-75, correlation, homogeneity, energy, psnr, ssim_pct, rmse); PE-CT, LIDnet-CPCE
LIDNET_TABLE4: dict[str, tuple[float, ...]] = {
    "CNN": (75.69, 26.26, 0.019, 0.034, 0.009, 31.76, 99.99, 0.028),
    "GAN": (75.99, 26.34, 0.016, 0.045, 0.011, 28.46, 99.98, 0.039),
}


def ascon_rows(dataset: str) -> dict[str, dict[str, float]]:
    """ASCON Table 1 for ``"mayo2016"`` or ``"mayo2020"`` as row -> {psnr, psnr_std, rmse, ...}
    (RMSE and its std on the [0, 1] scale, SSIM as a fraction, as our tables store them)."""
    out = {}
    for method, by_set in ASCON_TABLE1.items():
        p, ps, r, rs, s, ss = by_set[dataset]
        out[method] = {"psnr": p, "psnr_std": ps, "rmse": r / 100, "rmse_std": rs / 100, "ssim": s / 100, "ssim_std": ss / 100}
    return out
