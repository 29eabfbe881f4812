// Types for the asciichart package (it ships none): only what the examples use.
declare module 'asciichart' {
  export type PlotConfig = {
    height?: number
    min?: number
    max?: number
    offset?: number
    padding?: string
    colors?: string[]
    symbols?: string[]
    format?: (x: number, i: number) => string
  }
  export function plot(series: number[] | number[][], config?: PlotConfig): string
  export const blue: string
  export const green: string
  export const yellow: string
  export const reset: string
}
